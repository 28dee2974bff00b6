"""The walkthrough's defaults, read from env.sh: their one source, for Python's flags.

env.sh writes each default as `: "${NAME:=value}"`; the scripts' flags take
theirs from here, so that a by-hand command and `make` agree.
"""

import os
import re

ENV_SH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "env.sh")


def read_defaults(path: str = ENV_SH) -> dict[str, str]:
    """NAME -> default, of every `: "${NAME:=value}"` line whose value is plain text."""
    with open(path, encoding="utf-8") as f:
        lines = re.findall(r'^: "\$\{(\w+):=([^"$`]*)\}"$', f.read(), re.MULTILINE)
    return dict(lines)


DEFAULTS = read_defaults()
