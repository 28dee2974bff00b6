"""What `make export` wrote under MODEL_PATH: the version `make inspect` shows, and `make clean`.

    python -m tools.exports version_dir --model_base_path=DIR [--version=N]
    python -m tools.exports clean --exports_path=DIR

A version is what serving/versions.py says TensorFlow Serving reads. Standard
library only: no TensorFlow, no JAX. A failure prints what is wrong and what to
do, and exits with status 1.
"""

import argparse
import os
import pathlib
import shutil
import sys

from serving import versions


def version_dir(model_base_path: str, version: int | None = None) -> str:
    """The directory of `version`, or of the newest version."""
    if problem := versions.served_name_problem(os.path.basename(model_base_path)):
        fail(problem)
    try:
        return versions.find_version(model_base_path, version)[1]
    except LookupError:
        if version:
            fail(
                f"no SavedModel at {model_base_path}/{version}. Run 'make export', or set "
                "MODEL_VERSION."
            )
        fail(f"no version under {model_base_path}. Run 'make export' first.")


def clean(exports_path: str) -> None:
    """Deletes what `make export` wrote under `exports_path`, and what that left empty.

    Only versions whose export record names versions.EXPORTED_BY, and staging
    directories no running export holds (killed exports). A directory goes
    only when this emptied it: one that was empty already is someone else's.
    """
    path = os.path.realpath(exports_path) if exports_path else ""
    if path in ("", "/", os.path.realpath(os.path.expanduser("~"))):
        fail(f"refusing to clean MODEL_PATH='{exports_path}': give the directory of your exports.")
    if not os.path.isdir(path):
        print(f"Nothing to clean: {path} does not exist.")
        return
    emptied = False
    for name in sorted(os.listdir(path)):
        model_dir = os.path.join(path, name)
        if os.path.islink(model_dir) or not os.path.isdir(model_dir):
            continue
        removed = [
            *(v for v in versions.version_dirs(model_dir).values() if _exported_here(v)),
            *versions.stale_staging_dirs(model_dir),
        ]
        for directory in removed:
            print(f"rm -r {directory}")
            shutil.rmtree(directory)
        for staging in sorted(pathlib.Path(model_dir).glob(versions.STAGING_PREFIX + "*")):
            print(f"Left {staging}: an export that is still running writes it.")
        if removed and not os.listdir(model_dir):
            print(f"rmdir {model_dir}")
            os.rmdir(model_dir)
            emptied = True
    if emptied and not os.listdir(path):
        print(f"rmdir {path}")
        os.rmdir(path)


def _exported_here(version_dir: str) -> bool:
    """Whether `make export` wrote this version: its record says so, and it is a SavedModel."""
    return (
        not os.path.islink(version_dir)
        and versions.exported_here(version_dir)
        and os.path.isfile(os.path.join(version_dir, "saved_model.pb"))
    )


def fail(message: str) -> None:
    sys.exit(f"error: {message}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.exports", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("version_dir", help="print the directory `make inspect` shows")
    show.add_argument("--model_base_path", required=True, help="the model's directory")
    show.add_argument("--version", type=_positive, help="the version (default: the newest)")
    remove = commands.add_parser("clean", help="delete what `make export` wrote")
    remove.add_argument("--exports_path", required=True, help="MODEL_PATH")
    args = parser.parse_args(argv)
    if args.command == "version_dir":
        print(version_dir(args.model_base_path, args.version))
    else:
        clean(args.exports_path)


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive integer")
    return int(value)


if __name__ == "__main__":
    main()
