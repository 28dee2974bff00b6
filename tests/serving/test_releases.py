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
        pytest.param(
            "2.22", "Name 2.20, the newest release with an image, or nightly", id="unknown-newer"
        ),
        pytest.param("nightly", "is not a release number", id="not-a-number"),
        pytest.param("2", "is not a release number", id="major-only"),
    ],
)
def test_find_refuses_with_advice(given, message):
    with pytest.raises(ReleaseError, match=message.replace(".", r"\.")):
        releases.find(given)


# ---- TF_SERVING_VERSION: what an export and a server may target ---------------------


def test_the_default_target_is_the_newest_release_with_an_image():
    """The default serves with a released image; 2.21's TensorFlow has no server yet."""
    default = releases.target("")
    assert default == releases.newest_with_image() == releases.RELEASES["2.20"]
    assert default.image_tag == "2.20.0"
    assert releases.newest().release == "2.21" and releases.newest().image_tag is None


def test_the_default_follows_the_table(monkeypatch, tmp_path):
    """The rule, not the value: the newest row that has an image, wherever it is."""
    table = tmp_path / "releases.tsv"
    table.write_text("# comment\n2.18\t9\t1.7.3\t2.18.4\n2.19\t9\t1.9.1\t-\n\n")
    monkeypatch.setattr(releases, "RELEASES", releases.read_table(str(table)))
    assert releases.target("").image_tag == "2.18.4"
    with pytest.raises(ReleaseError, match=r"The newest TensorFlow Serving release is 2\.18"):
        releases.target("2.19")


@pytest.mark.parametrize("given", ["nightly", " nightly "])
def test_nightly_targets_jax_newest_format(given):
    assert releases.target(given) is None


@pytest.mark.parametrize("given", ["2.16", "2.19.1", "2.20"])
def test_a_release_with_an_image_is_a_target(given):
    assert releases.target(given) == releases.find(given)


@pytest.mark.parametrize("given", ["2.21", "2.21.0"])
def test_a_release_without_a_server_is_no_target(given):
    with pytest.raises(ReleaseError) as error:
        releases.target(given)
    assert str(error.value) == (
        f"TF_SERVING_VERSION={given}: no TensorFlow Serving 2.21 release exists yet (TensorFlow "
        "2.21 does, and `make compat` runs exports with it). The newest TensorFlow Serving "
        "release is 2.20: use TF_SERVING_VERSION=2.20 (the default, image "
        "tensorflow/serving:2.20.0), or TF_SERVING_VERSION=nightly for JAX's newest format and "
        "the tensorflow/serving:nightly image."
    )
    assert releases.find(given).release == "2.21"  # make compat runs its TensorFlow.
