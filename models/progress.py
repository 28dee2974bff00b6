"""A one-line progress bar for long loops (training epochs, the request loop).

Drawn on a terminal only: logs, pipes and CI output get no carriage-return
noise. It goes to stdout, since the Makefile filters stderr line by line
(quiet_startup.sh), which would hold a bar back until its line ends. Where a
line per step is wanted instead, the scripts' --verbose gives it.
"""

import sys


def bar(label: str, done: int, total: int) -> None:
    """Redraws `label [=====     ] done/total`; ends the line when done == total."""
    if not sys.stdout.isatty():
        return
    width = 30
    filled = width * done // total
    end = "\n" if done == total else ""
    sys.stdout.write(f"\r{label} [{'=' * filled}{' ' * (width - filled)}] {done}/{total}{end}")
    sys.stdout.flush()
