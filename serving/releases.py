"""TensorFlow Serving's releases: which export format each reads, and its Docker image.

The table is serving/releases.tsv, which env.sh reads too (for DOCKER_IMAGE).
Standard library only: the Makefile's checks and deploy/ use it without
importing TensorFlow or JAX.
"""

import dataclasses
import os
import re

TABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "releases.tsv")
# The image of TensorFlow's newest code, for JAX's newest format.
NIGHTLY = "nightly"


class ReleaseError(ValueError):
    """A TensorFlow Serving release that is not a release number, or that no export fits."""


@dataclasses.dataclass(frozen=True)
class Release:
    """One TensorFlow Serving release: the newest export format it reads, and its image."""

    release: str  # "2.19"
    calling_convention_version: int
    stablehlo_version: str  # "1.9.1"
    image_tag: str | None  # "2.19.1"; None where the release has no image


def read_table(path: str = TABLE) -> dict[str, Release]:
    """release -> Release, in the table's order (oldest first)."""
    table = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            release, convention, stablehlo, image = line.split()
            table[release] = Release(
                release, int(convention), stablehlo, None if image == "-" else image
            )
    return table


RELEASES = read_table()


def release_key(version: str) -> tuple[int, ...]:
    """ "1.9.1" -> (1, 9, 1), so that versions compare as numbers."""
    return tuple(int(part) for part in version.split("."))


def release_of(tf_serving_version: str) -> str:
    """ "2.19.1" or "2.19" -> "2.19": TensorFlow Serving X.Y runs TensorFlow X.Y."""
    match = re.fullmatch(r"\s*(\d+)\.(\d+)(\.[\w.+-]*)?\s*", tf_serving_version)
    if not match:
        raise ReleaseError(
            f"TF_SERVING_VERSION={tf_serving_version!r} is not a release number: give the "
            "TensorFlow Serving release you run, such as 2.19 or 2.19.1 (empty: JAX's newest "
            "format)."
        )
    return f"{int(match[1])}.{int(match[2])}"


def oldest() -> Release:
    return min(RELEASES.values(), key=lambda r: release_key(r.release))


def newest() -> Release:
    return max(RELEASES.values(), key=lambda r: release_key(r.release))


def newest_with_image() -> Release:
    """The newest release that has a Docker image: what a cluster pins by default."""
    return max((r for r in RELEASES.values() if r.image_tag), key=lambda r: release_key(r.release))


def find(tf_serving_version: str) -> Release:
    """The release of `tf_serving_version` ("2.19", "2.19.1"); ReleaseError if unknown."""
    release = release_of(tf_serving_version)
    if release in RELEASES:
        return RELEASES[release]
    first, last = oldest(), newest()
    if release_key(release) < release_key(first.release):
        raise ReleaseError(
            f"TensorFlow Serving {tf_serving_version} cannot run this export: its TensorFlow "
            "reads XlaCallModule calling convention 8 at most, and JAX writes 9 or newer. Serve "
            f"with TensorFlow Serving {first.release} or newer (for example the Docker image "
            f"tensorflow/serving:{first.image_tag}), or export with an older JAX whose "
            "jax.export.minimum_supported_calling_convention_version is 8 or less."
        )
    raise ReleaseError(
        f"TensorFlow Serving {tf_serving_version} is newer than the releases this export knows "
        f"({first.release} to {last.release}). Leave TF_SERVING_VERSION empty for JAX's newest "
        f"format, or name {last.release}; then check the export with `make compat`."
    )
