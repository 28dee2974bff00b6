"""A model's versions on disk, as TensorFlow Serving reads them, and how an export adds one.

TensorFlow Serving polls a model's base path and serves its numeric
subdirectories ("00000123" is version 123). A version must appear complete
or not at all: an export writes it in a `staging_directory` beside the
versions, then `publish` renames it into place atomically, as the version
asked for or the next free one.

Standard library only, so that the Makefile's bookkeeping (`make clean`,
`make inspect`, `make serve`'s checks) and the local server read versions
without importing TensorFlow or JAX.
"""

import contextlib
import ctypes
import datetime
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator

STAGING_PREFIX = ".staging-"
# Where TensorFlow Serving looks for the requests that warm a version up.
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
# The export's record of itself (saved_model_main.py writes it): `make clean`
# deletes only the versions whose record names EXPORTED_BY.
EXPORT_INFO_FILE = os.path.join("assets.extra", "export_info.json")
EXPORTED_BY = "jax2tf-serving saved_model_main.py"

_log = logging.getLogger(__name__)


class VersionExistsError(FileExistsError):
    """The version asked for exists and may not be replaced; the message says what to do."""


def served_name_problem(model: str) -> str:
    """Why MODEL cannot name an exported or served model ('' if it can): package.module:attribute
    names the model's code, which only make export reads."""
    if ":" not in model:
        return ""
    return (
        f"MODEL={model} names a model's code, which only make export takes; give the name it "
        "was exported as (the export's last line: Exported NAME version N): MODEL=NAME"
    )


def version_dirs(base_dir: str) -> dict[int, str]:
    """version number -> its directory under `base_dir`; numeric names only."""
    try:
        names = os.listdir(base_dir)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    return {
        int(name): os.path.join(base_dir, name)
        for name in names
        if re.fullmatch(r"[0-9]+", name) and os.path.isdir(os.path.join(base_dir, name))
    }


def versions(base_dir: str) -> list[int]:
    """The version numbers under `base_dir`, in increasing order."""
    return sorted(version_dirs(base_dir))


def next_version(base_dir: str) -> int:
    """1 + the highest version under `base_dir`, 1 if there is none."""
    return max(versions(base_dir), default=0) + 1


def version_dir(base_dir: str, version: int) -> str | None:
    """The directory of `version` (maybe spelled with leading zeros), or None."""
    return version_dirs(base_dir).get(version)


def find_version(base_dir: str, version: int | None = None) -> tuple[int, str]:
    """`version` (default: the newest) and its directory; LookupError if there is none."""
    version = version or max(versions(base_dir), default=0)
    path = version_dir(base_dir, version)
    if path is None:
        raise LookupError(
            f"no version {version} under {base_dir}" if version else f"no version under {base_dir}"
        )
    return version, path


def read_export_info(version_dir: str) -> dict:
    """The version's EXPORT_INFO_FILE; empty if it has none, or none that reads as a record."""
    try:
        with open(os.path.join(version_dir, EXPORT_INFO_FILE)) as f:
            info = json.load(f)
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def exported_here(version_dir: str) -> bool:
    """Whether saved_model_main.py wrote this version (what `make clean` may delete)."""
    return read_export_info(version_dir).get("exported_by") == EXPORTED_BY


def write_export_info(version_dir: str, info: dict) -> str:
    """Writes EXPORT_INFO_FILE: EXPORTED_BY, the time, then `info`; returns its path."""
    created = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    path = os.path.join(version_dir, EXPORT_INFO_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"exported_by": EXPORTED_BY, "created": created, **info}, f, indent=2)
        f.write("\n")
    return path


@contextlib.contextmanager
def staging_directory(base_dir: str) -> Iterator[str]:
    """A fresh directory beside the versions, removed on exit unless published, with
    the directories made for it (`base_dir`, MODEL_PATH) if they are left empty.

    It stays locked (flock) while in use, so that stale_staging_dirs can tell
    it from the leftover of a killed export.
    """
    made, parent = [], os.path.abspath(base_dir)
    while not os.path.isdir(parent):  # The missing directories, deepest first.
        made.append(parent)
        parent = os.path.dirname(parent)
    for attempt in range(3):  # Another export may remove base_dir, empty, in between.
        os.makedirs(base_dir, exist_ok=True)
        try:
            path = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=base_dir)
            break
        except FileNotFoundError:
            if attempt == 2:
                raise
    lock = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # mkdtemp makes it private (0700); a published version must be readable
        # by a model server running as another user, as in a container.
        os.chmod(path, 0o755)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(lock)  # After the removal: never an unlocked directory in use.
        for directory in made:  # Kept when not empty: a version, another export's staging.
            try:
                os.rmdir(directory)
            except OSError:
                break


def stale_staging_dirs(base_dir: str) -> list[str]:
    """Staging directories under `base_dir` that no running export holds (killed ones)."""
    stale = []
    for name in sorted(os.listdir(base_dir)) if os.path.isdir(base_dir) else []:
        path = os.path.join(base_dir, name)
        if not name.startswith(STAGING_PREFIX) or not os.path.isdir(path):
            continue
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # An export is writing it.
        finally:
            os.close(fd)
        stale.append(path)
    return stale


def publish_version(
    staging_dir: str, base_dir: str, version: int, *, overwrite: bool = False
) -> str:
    """Renames `staging_dir` to `base_dir/version`, atomically; returns that path.

    Raises FileExistsError if the version exists, unless `overwrite`: then the
    two directories are exchanged in one step, so that the version is never
    missing, and the old one (now at `staging_dir`) is deleted. Where the
    system cannot exchange (renameat2 is Linux's), the old version is moved
    aside first, and for a moment there is none.
    """
    old_dir = version_dir(base_dir, version)
    if old_dir and not overwrite:
        raise FileExistsError(errno.EEXIST, "version exists", old_dir)
    if old_dir:
        if not _exchange(staging_dir, old_dir):
            _replace_in_two_steps(staging_dir, old_dir)
        shutil.rmtree(staging_dir, ignore_errors=True)
        return old_dir
    target = os.path.join(base_dir, str(version))
    try:
        os.rename(staging_dir, target)
    except OSError as e:
        # Another export took this version after the check above: rename()
        # refuses to replace a non-empty directory.
        if e.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise FileExistsError(errno.EEXIST, "version exists", target) from e
        raise
    return target


def check_can_publish(base_dir: str, version: int | None, *, overwrite: bool = False) -> None:
    """Checks, before the work, that a version can be published under `base_dir`.

    Raises VersionExistsError if `version` exists (unless `overwrite`), or OSError if no
    staging directory can be made there. `version` None stands for the next free one.
    """
    if version in versions(base_dir) and not overwrite:
        raise _version_exists(base_dir, version)
    with staging_directory(base_dir):
        pass


def publish(
    staging_dir: str, base_dir: str, version: int | None, *, overwrite: bool = False
) -> int:
    """Publishes `staging_dir` as `version`, None: the next free version; returns the number.

    If another export takes the next free version first, the one after it is taken. An
    explicit version that exists raises VersionExistsError, unless `overwrite`: replacing
    it logs a warning, because TensorFlow Serving never reloads a version it serves.
    """
    while True:
        number = version or next_version(base_dir)
        replaces = version_dir(base_dir, number) is not None
        try:
            publish_version(staging_dir, base_dir, number, overwrite=overwrite)
        except FileExistsError as e:
            if version:
                raise _version_exists(base_dir, version) from e
            _log.info("Version %d was taken meanwhile; trying the next one", number)
            continue
        if replaces:
            _log.warning(
                "Replaced version %d. A model server that already serves version %d keeps its "
                "old weights: TensorFlow Serving never reloads a version it serves. Restart "
                "the server, or export a new version instead (no MODEL_VERSION).",
                number,
                number,
            )
        return number


def _version_exists(base_dir: str, version: int) -> VersionExistsError:
    return VersionExistsError(
        f"version {version} of {base_dir} exists; nothing was changed. Export to the next free "
        f"version by leaving MODEL_VERSION unset (next: {next_version(base_dir)}), or replace "
        "it with OVERWRITE=1 (--overwrite)."
    )


def _exchange(path: str, other: str) -> bool:
    """Swaps two directories in one step; False where the system cannot."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    at_fdcwd, rename_exchange = -100, 2  # From <fcntl.h> and <linux/fs.h>.
    if renameat2(at_fdcwd, os.fsencode(path), at_fdcwd, os.fsencode(other), rename_exchange) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False  # An old kernel, or a file system that cannot exchange.
    raise OSError(error, os.strerror(error), other)


def _replace_in_two_steps(staging_dir: str, old_dir: str) -> None:
    """Moves `old_dir` aside, `staging_dir` to `old_dir` (or the old one back), deletes the old."""
    aside = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=os.path.dirname(old_dir))
    os.rename(old_dir, os.path.join(aside, "old"))
    try:
        os.rename(staging_dir, old_dir)
    except OSError:
        os.rename(os.path.join(aside, "old"), old_dir)
        raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)
