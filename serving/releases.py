"""TensorFlow Serving's releases: which export format each reads, and its Docker image.

The table is serving/releases.tsv, which env.sh reads too (for TF_SERVING_VERSION's
default and DOCKER_IMAGE). Standard library only: the Makefile's checks and deploy/
use it without importing TensorFlow or JAX.

What TF_SERVING_VERSION may name, for an export and for a server (`target`): a
release of the table that has an image (2.19, or a full number such as 2.19.1); nightly,
for JAX's newest format and the tensorflow/serving:nightly image; empty, for the
default, the newest release with an image. A release whose TensorFlow exists but
whose TensorFlow Serving does not (2.21) is no target: `make compat` alone runs it.
"""

import dataclasses
import os
import re

TABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "releases.tsv")
# TF_SERVING_VERSION and image tag of TensorFlow Serving's newest code, for JAX's newest format.
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
            "TensorFlow Serving release you run, such as 2.19 or 2.19.1 (or nightly, for "
            "JAX's newest format and the tensorflow/serving:nightly image)."
        )
    return f"{int(match[1])}.{int(match[2])}"


def oldest() -> Release:
    return min(RELEASES.values(), key=lambda r: release_key(r.release))


def newest() -> Release:
    return max(RELEASES.values(), key=lambda r: release_key(r.release))


def newest_with_image() -> Release:
    """The newest release that has a Docker image: TF_SERVING_VERSION's default."""
    return max((r for r in RELEASES.values() if r.image_tag), key=lambda r: release_key(r.release))


def target(tf_serving_version: str) -> Release | None:
    """The release that TF_SERVING_VERSION names for an export or a server; None: nightly.

    Empty names the default, newest_with_image(). Raises ReleaseError for what no
    TensorFlow Serving release serves: a number the table does not know, or a release
    without a server (TensorFlow 2.21 exists, TensorFlow Serving 2.21 does not yet).
    """
    value = tf_serving_version.strip()
    if value == NIGHTLY:
        return None
    if not value:
        return newest_with_image()
    release = find(value)
    if release.image_tag is None:
        served = newest_with_image()
        raise ReleaseError(
            f"TF_SERVING_VERSION={value}: no TensorFlow Serving "
            f"{release.release} release exists yet (TensorFlow {release.release} does, and "
            f"`make compat` runs exports with it). The newest TensorFlow Serving release is "
            f"{served.release}: use TF_SERVING_VERSION={served.release} (the default, image "
            f"tensorflow/serving:{served.image_tag}), or TF_SERVING_VERSION={NIGHTLY} for JAX's "
            f"newest format and the tensorflow/serving:{NIGHTLY} image."
        )
    return release


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
        f"({first.release} to {last.release}). Name {newest_with_image().release}, the newest "
        f"release with an image, or {NIGHTLY} for JAX's newest format; then check the export "
        "with `make compat`."
    )
