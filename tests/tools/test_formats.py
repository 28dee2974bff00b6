"""What the format table says of an export's XlaCallModule ops (tools/formats.py)."""

from saved_model_lib import XlaCallModuleInfo
from serving import releases
from tools import formats


def test_a_format_that_2_16_reads_names_2_16_and_newer():
    r = releases.RELEASES["2.16"]
    info = XlaCallModuleInfo(r.calling_convention_version, ("CPU",), r.stablehlo_version)
    text = formats.describe([info, info])
    assert "XlaCallModule (2 ops): calling convention 9, StableHLO 0.17.7, platforms CPU" in text
    assert "By the format table, TensorFlow Serving 2.16 and newer read it" in text


def test_a_format_only_2_21_reads_names_no_server():
    """TensorFlow 2.21 reads StableHLO 1.13; no TensorFlow Serving release does yet."""
    text = formats.describe([XlaCallModuleInfo(10, ("CPU",), "1.13.0")])
    assert (
        "By the format table, TensorFlow 2.21 and newer read it, and no TensorFlow Serving "
        "release up to 2.20: serve it with tensorflow/serving:nightly, or export for 2.20"
    ) in text
    assert "TensorFlow Serving 2.21" not in text


def test_a_format_newer_than_the_table_and_no_op_at_all():
    text = formats.describe([XlaCallModuleInfo(11, ("CPU",), "9.0.0")])
    newest = releases.newest().release
    assert f"The format table promises no release up to {newest} for it" in text
    assert "needs no particular TensorFlow Serving release" in formats.describe([])
