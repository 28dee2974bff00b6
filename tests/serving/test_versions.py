"""serving.versions: versions on disk as TensorFlow Serving reads them, atomic publishing."""

import os

import pytest

from serving import versions


@pytest.mark.parametrize(
    "names, expected",
    [
        pytest.param(["1", "2", "10"], [1, 2, 10], id="numbers"),
        pytest.param(["007"], [7], id="leading-zeros"),
        pytest.param(["12\n", "1a", ".staging-x", "-1", "٣"], [], id="not-versions"),
    ],
)
def test_version_dirs_read_names_as_tensorflow_serving_does(tmp_path, names, expected):
    for name in names:
        (tmp_path / name).mkdir()
    (tmp_path / "5").write_text("a file is no version")
    assert versions.versions(str(tmp_path)) == expected
    assert versions.next_version(str(tmp_path)) == max(expected, default=0) + 1


def test_find_version(tmp_path):
    with pytest.raises(LookupError, match="no version under"):
        versions.find_version(str(tmp_path))
    (tmp_path / "3").mkdir()
    assert versions.find_version(str(tmp_path)) == (3, str(tmp_path / "3"))
    with pytest.raises(LookupError, match="no version 4 under"):
        versions.find_version(str(tmp_path), 4)


def test_staging_and_publishing(tmp_path):
    with versions.staging_directory(str(tmp_path)) as staging:
        assert os.path.basename(staging).startswith(versions.STAGING_PREFIX)
        open(os.path.join(staging, "new"), "w").close()
        assert versions.publish_version(staging, str(tmp_path), 1) == str(tmp_path / "1")
    assert os.listdir(tmp_path) == ["1"]
    with versions.staging_directory(str(tmp_path)) as staging:
        with pytest.raises(FileExistsError):
            versions.publish_version(staging, str(tmp_path), 1)
        open(os.path.join(staging, "newer"), "w").close()
        versions.publish_version(staging, str(tmp_path), 1, overwrite=True)
    assert os.listdir(tmp_path) == ["1"] and os.listdir(tmp_path / "1") == ["newer"]


def test_an_interrupted_staging_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt), versions.staging_directory(str(tmp_path)):
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_stale_staging_dirs_are_only_those_no_export_holds(tmp_path):
    (tmp_path / ".staging-killed").mkdir()
    with versions.staging_directory(str(tmp_path)) as running:
        assert versions.stale_staging_dirs(str(tmp_path)) == [str(tmp_path / ".staging-killed")]
        assert os.path.isdir(running)


def test_read_export_info(tmp_path):
    assert versions.read_export_info(str(tmp_path)) == {}  # None written.
    info_file = tmp_path / versions.EXPORT_INFO_FILE
    info_file.parent.mkdir()
    for text in ("not json", "[1, 2]"):
        info_file.write_text(text)
        assert versions.read_export_info(str(tmp_path)) == {}
    info_file.write_text('{"exported_by": "me"}')
    assert versions.read_export_info(str(tmp_path)) == {"exported_by": "me"}
