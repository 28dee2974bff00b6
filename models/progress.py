"""A one-line progress bar on a terminal, for long loops (training, the request loop).

    for done in range(1, total + 1):
        progress.bar("requests", done, total)  # The last call ends the line.

Only on a terminal: logs and pipes get no carriage returns.
"""

import sys


def bar(label: str, done: int, total: int) -> None:
    """Redraws `label [=====     ] done/total`; ends the line when done == total.

    It writes to stdout because the Makefile filters stderr line by line
    (quiet_startup.sh), which would hold back a line that has not ended.
    """
    if not sys.stdout.isatty():
        return
    width = 30
    filled = width * done // total
    end = "\n" if done == total else ""
    sys.stdout.write(f"\r{label} [{'=' * filled}{' ' * (width - filled)}] {done}/{total}{end}")
    sys.stdout.flush()
