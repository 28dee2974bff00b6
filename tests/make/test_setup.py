"""`make setup` installs only the files whose hashes requirements.txt pins.

The install runs offline, in a copy of the Makefile with a requirements.txt of one
small wheel that the test builds, so it checks the Makefile's own pip command.
"""

import hashlib
import os
import shutil
import subprocess
import zipfile

from conftest import ROOT

WHEEL = "hashcheck_demo-1.0-py3-none-any.whl"


def build_wheel(folder) -> str:
    """A one-module wheel; its sha256, as requirements.txt pins it."""
    folder.mkdir()
    info = "hashcheck_demo-1.0.dist-info"
    files = {
        "hashcheck_demo.py": "ANSWER = 42\n",
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: hashcheck-demo\nVersion: 1.0\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(folder / WHEEL, "w") as wheel:
        for name, text in {**files, f"{info}/RECORD": record}.items():
            wheel.writestr(name, text)
    return hashlib.sha256((folder / WHEEL).read_bytes()).hexdigest()


def project_with(tmp_path, pinned_hash: str):
    """A copy of the Makefile and what it reads, with a requirements.txt of the wheel."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "Makefile", project)
    shutil.copy(ROOT / "env.sh", project)
    shutil.copytree(ROOT / "make", project / "make")
    (project / "serving").mkdir()
    shutil.copy(ROOT / "serving" / "releases.tsv", project / "serving")
    pin = f"hashcheck-demo==1.0 \\\n    --hash=sha256:{pinned_hash}\n"
    (project / "requirements.txt").write_text(pin)
    return project


def install(project, wheels) -> subprocess.CompletedProcess:
    """Make's rule for the virtualenv, offline: pip reads no config, only `wheels`."""
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheels), PIP_CONFIG_FILE=os.devnull)
    return subprocess.run(
        ["make", "-C", str(project), "--no-print-directory", ".venv/.requirements.stamp"],
        env=env,
        capture_output=True,
        text=True,
    )


def test_make_setup_installs_a_file_whose_hash_matches(tmp_path):
    sha256 = build_wheel(tmp_path / "wheels")
    project = project_with(tmp_path, sha256)
    result = install(project, tmp_path / "wheels")
    assert result.returncode == 0, result.stdout + result.stderr
    python = project / ".venv" / "bin" / "python"
    script = "import hashcheck_demo; print(hashcheck_demo.ANSWER)"
    answer = subprocess.run([python, "-c", script], capture_output=True)
    assert answer.stdout.strip() == b"42"


def test_make_setup_refuses_a_file_whose_hash_differs(tmp_path):
    sha256 = build_wheel(tmp_path / "wheels")
    tampered = hashlib.sha256(sha256.encode()).hexdigest()  # any other sha256
    project = project_with(tmp_path, tampered)
    result = install(project, tmp_path / "wheels")
    assert result.returncode != 0
    # pip's own refusal, naming the package and both hashes; nothing installed.
    assert "hashcheck-demo" in result.stderr.lower()
    assert tampered in result.stderr and sha256 in result.stderr
    assert not (project / ".venv" / ".requirements.stamp").exists()
    assert not list((project / ".venv").glob("lib/python*/site-packages/hashcheck_demo.py"))


def test_requirements_txt_pins_and_hashes_every_package():
    """Each requirement is `name==version` with a sha256 (what --require-hashes needs)."""
    text = (ROOT / "requirements.txt").read_text().replace("\\\n", " ")
    lines = [line.split("#")[0] for line in text.splitlines()]
    requirements = [line.split() for line in lines if line.strip()]
    assert len(requirements) > 30
    for words in requirements:
        assert "==" in words[0], words[0]
        assert any(word.startswith("--hash=sha256:") for word in words[1:]), words[0]

    def name(pin: str) -> str:
        return pin.split("==")[0].lower().replace("_", "-")

    pinned = {name(words[0]) for words in requirements}
    for line in (ROOT / "requirements.in").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert name(line) in pinned, f"requirements.in's {line} is not in requirements.txt"
