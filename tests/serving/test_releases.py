"""serving.releases: the release table (serving/releases.tsv) and release numbers."""

import itertools

import pytest

from serving import releases
from serving.releases import ReleaseError


@pytest.mark.parametrize(
    "given, release",
    [
        pytest.param("2.16", "2.16", id="oldest"),
        pytest.param("2.19.1", "2.19", id="full-release-number"),
        pytest.param(" 2.21 ", "2.21", id="spaces"),
        pytest.param("2.20.0rc1", "2.20", id="release-candidate"),
    ],
)
def test_find_reads_the_release(given, release):
    assert releases.find(given) == releases.RELEASES[release]


def test_the_table_grows_with_the_releases():
    table = list(releases.RELEASES.values())
    assert table[0].release == "2.16" == releases.oldest().release
    for older, newer in itertools.pairwise(table):
        assert releases.release_key(newer.release) > releases.release_key(older.release)
        assert newer.calling_convention_version >= older.calling_convention_version
        assert releases.release_key(newer.stablehlo_version) > releases.release_key(
            older.stablehlo_version
        )
        # An image tag is a patch release of its own release.
        if newer.image_tag:
            assert releases.release_of(newer.image_tag) == newer.release


@pytest.mark.parametrize(
    "given, message",
    [
        pytest.param(
            "2.15",
            "TensorFlow Serving 2.15 cannot run this export: its TensorFlow reads XlaCallModule "
            "calling convention 8 at most",
            id="older-than-2.16",
        ),
        pytest.param("2.6.2", "Serve with TensorFlow Serving 2.16 or newer", id="kserve-default"),
        pytest.param("2.22", "is newer than the releases this export knows", id="unknown-newer"),
        pytest.param("nightly", "is not a release number", id="not-a-number"),
        pytest.param("2", "is not a release number", id="major-only"),
    ],
)
def test_find_refuses_with_advice(given, message):
    with pytest.raises(ReleaseError, match=message.replace(".", r"\.")):
        releases.find(given)
