"""serving.versions: versions on disk as TensorFlow Serving reads them, atomic publishing."""

import os

import pytest
from conftest import rival_takes_the_first_version

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


def test_a_staging_removes_the_directories_it_made_unless_a_version_is_in_them(tmp_path):
    model_path = tmp_path / "models"
    base = model_path / "m"
    with pytest.raises(KeyboardInterrupt), versions.staging_directory(str(base)):
        assert base.is_dir()
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []  # A failed first export leaves no empty folders.
    with versions.staging_directory(str(base)) as staging:
        versions.publish_version(staging, str(base), 1)
    assert os.listdir(base) == ["1"]
    (tmp_path / "empty").mkdir()  # Already there: someone else's, kept.
    with versions.staging_directory(str(tmp_path / "empty")):
        pass
    assert (tmp_path / "empty").is_dir()


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


def test_write_export_info_is_what_read_export_info_and_make_clean_read(tmp_path):
    path = versions.write_export_info(str(tmp_path), {"model": "mnist_flax"})
    assert path == str(tmp_path / versions.EXPORT_INFO_FILE)
    info = versions.read_export_info(str(tmp_path))
    assert list(info) == ["exported_by", "created", "model"] and info["model"] == "mnist_flax"
    assert versions.exported_here(str(tmp_path))


def test_check_can_publish(tmp_path):
    (tmp_path / "3").mkdir()
    with pytest.raises(versions.VersionExistsError, match=r"version 3 of .* exists.*next: 4"):
        versions.check_can_publish(str(tmp_path), 3)
    versions.check_can_publish(str(tmp_path), 3, overwrite=True)
    versions.check_can_publish(str(tmp_path), None)
    assert os.listdir(tmp_path) == ["3"]  # No staging directory left.
    (tmp_path / "a_file").write_text("")
    with pytest.raises(NotADirectoryError):
        versions.check_can_publish(str(tmp_path / "a_file" / "model"), None)


def staged(base_dir, content: str) -> str:
    path = os.path.join(base_dir, f"{versions.STAGING_PREFIX}{content}")
    os.makedirs(path)
    open(os.path.join(path, content), "w").close()
    return path


def test_publish_takes_the_next_free_version_even_if_another_export_takes_it(tmp_path, monkeypatch):
    base_dir = str(tmp_path)
    assert versions.publish(staged(base_dir, "a"), base_dir, None) == 1
    tried = rival_takes_the_first_version(monkeypatch)
    assert versions.publish(staged(base_dir, "b"), base_dir, None) == 3
    assert tried == [2, 3] and os.listdir(tmp_path / "3") == ["b"]
    assert os.listdir(tmp_path / "2") == ["saved_model.pb"]  # The rival's, untouched.


def test_publish_an_explicit_version(tmp_path, caplog):
    base_dir = str(tmp_path)
    assert versions.publish(staged(base_dir, "a"), base_dir, 5) == 5
    with pytest.raises(versions.VersionExistsError, match=r"version 5 of .* exists.*next: 6"):
        versions.publish(staged(base_dir, "b"), base_dir, 5)
    with caplog.at_level("WARNING"):
        assert versions.publish(staged(base_dir, "c"), base_dir, 5, overwrite=True) == 5
    assert "Replaced version 5" in caplog.text
    assert os.listdir(tmp_path / "5") == ["c"]
