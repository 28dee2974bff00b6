"""What an export's XlaCallModule ops need, and the releases the format table says read them.

    print(formats.describe(saved_model_lib.xla_call_modules(saved_model_dir)))

`python -m tools.compat` prints it before it runs the export with each release's
TensorFlow, and alone with --norun (make inspect). A module without flags, so that
a process that defines the export's flags can call it too.
"""

import collections
from typing import TYPE_CHECKING

from serving import releases
from serving.releases import release_key

if TYPE_CHECKING:
    from saved_model_lib import XlaCallModuleInfo


def describe(modules: "list[XlaCallModuleInfo]") -> str:
    """What the XlaCallModule ops need, and the releases that the format table says read them."""
    from saved_model_lib import format_problems

    if not modules:
        return "  No XlaCallModule op: the model needs no particular TensorFlow Serving release."
    lines = [
        f"  XlaCallModule ({count} {'op' if count == 1 else 'ops'}): calling convention "
        f"{m.calling_convention_version}, StableHLO {m.stablehlo_version}, "
        f"platforms {','.join(m.platforms)}"
        for m, count in collections.Counter(modules).items()
    ]
    table = releases.RELEASES
    readers = [r for r in table if not format_problems(modules, table[r])]
    served = [r for r in readers if table[r].image_tag]
    if served:
        oldest = min(served, key=release_key)
        lines.append(
            f"  By the format table, TensorFlow Serving {oldest} and newer read it "
            "(make compat runs it to prove it)."
        )
    elif readers:  # Only releases whose TensorFlow exists and whose server does not yet.
        newest = releases.newest_with_image()
        lines.append(
            f"  By the format table, TensorFlow {min(readers, key=release_key)} and newer read "
            f"it, and no TensorFlow Serving release up to {newest.release}: serve it with "
            f"tensorflow/serving:{releases.NIGHTLY}, or export for {newest.release} (make "
            f"export TF_SERVING_VERSION={newest.release}); make compat runs it to tell which can."
        )
    else:
        lines.append(
            "  The format table promises no release up to "
            f"{releases.newest().release} for it: serve it with tensorflow/serving:"
            f"{releases.NIGHTLY}; make compat runs it to tell which releases can."
        )
    return "\n".join(lines)
