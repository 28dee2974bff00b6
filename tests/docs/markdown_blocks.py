"""Runs the shell blocks of a Markdown page as a reader would, and checks what they print.

The rules, for writers (docs/testing.md, "Commands in the documentation"):

- A ```sh, ```bash or ```console block is a command block. The blocks of a page run
  in order, at the repository's root, in one session: each in its own bash (`set -e
  -o pipefail`), with the variables the blocks before it exported, as in one terminal.
- In a ```console block, each `$ ` line is a command (a line ending in `\\` goes on)
  and the lines under it are what that command prints.
- A ```text block is what the command block before it prints.
- An HTML comment on the line before a command block changes how it is checked:
  `<!-- needs: docker -->` (or a cluster, the network, ...) and `<!-- dry-run: reason -->`
  do not run it: each of its lines that starts with `make` runs as `make -n` and must
  succeed, its ```text block is matched against what `make -n` printed, and its other
  lines are only parsed (`bash -n`). `<!-- fails -->` runs it and wants it to exit
  non-zero.
- Every inline `make ...` in the prose runs as `make -n` and must succeed.
- Expected output is matched line by line against what the block printed (stdout
  and stderr), as consecutive lines, ignoring blank lines and runs of spaces:
  a line `...` stands for any lines, `...` inside a line for any text, `${VAR}` for
  env.sh's default of VAR, and a number followed by `%`, `s`, `ms`, `images/s`,
  `examples/s` or `requests/s` for any number (timings, accuracy). The session's own
  values (MODEL_PATH, RUN_DIR, DEPLOY_OUT, TMPDIR, the ports) are written back as
  their defaults in what a block printed, so that the pages quote what a reader sees.
- Other languages are data (```protobuf, ```yaml, ```json); ```python and unnamed
  fences are refused: a command must be a shell block to be run.

The session runs `make` as `make -o $VENV/.requirements.stamp`: it never rebuilds the
virtualenv (`make setup` is not part of a test), whatever the stamp's age.
"""

import contextlib
import dataclasses
import os
import pathlib
import re
import shlex
import signal
import subprocess
import sys
import time

from conftest import WALKTHROUGH_VARIABLES, WARMUP_BATCH_SIZES

from local_server.harness import free_port

ROOT = pathlib.Path(__file__).resolve().parents[2]

SHELL_LANGUAGES = {"sh", "bash", "console"}
DATA_LANGUAGES = {"protobuf", "yaml", "json"}
MARKER = re.compile(r"^<!--\s*(needs|dry-run|fails)\s*(?::\s*(.*?))?\s*-->$")
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
INLINE_MAKE = re.compile(r"`(make [^`]+)`")
# A number that varies from run to run: followed by a unit of time, a rate or a share.
VARYING_NUMBER = re.compile(
    r"\d+(?:\.\d+)?(?=\s?(?:%|(?:ms|s|images/s|examples/s|requests/s)(?![\w/])))"
)
NUMBER = r"\d+(?:\.\d+)?"
# What a session sets: none of the walkthrough's variables a reader's shell may hold
# (conftest removes them), nor those of a make that runs the tests or of a virtualenv.
SESSION_VARIABLES = {
    *WALKTHROUGH_VARIABLES,
    "TESTS",
    "MAKEFLAGS",
    "MFLAGS",
    "MAKELEVEL",
    "VIRTUAL_ENV",
}
# The defaults of the Makefile's paths that `make env` does not print.
PATH_DEFAULTS = {"RUN_DIR": ".run", "DEPLOY_OUT": "deploy/out", "TMPDIR": "/tmp"}
BLOCK_TIMEOUT_SECONDS = 300
MARK = "<<<end of command>>>"
# In the environment of everything a session starts, so that it can end them.
SESSION_ID = "DOCS_TEST_SESSION"


@dataclasses.dataclass
class Command:
    """One command of a console block, or a whole sh block, and what it must print."""

    text: str
    expected: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Block:
    path: pathlib.Path
    line: int  # of the opening fence, 1-based
    language: str
    commands: list[Command]
    marker: str = ""  # needs, dry-run, fails or empty
    reason: str = ""

    @property
    def where(self) -> str:
        return f"{shown(self.path)}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.marker not in ("needs", "dry-run")


class DocError(AssertionError):
    """A page breaks the rules above, or a block fails or prints something else."""


def shown(path: pathlib.Path) -> str:
    """A page's path as messages give it: from the repository's root."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def parse(path: pathlib.Path) -> list[Block]:
    """The command blocks of a page, each with the output it must print."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    previous = ""  # the last non-blank line before a fence
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            if lines[i].strip():
                previous = lines[i].strip()
            i += 1
            continue
        indent, language = match.groups()
        start = i
        body = []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        if i == len(lines):
            raise DocError(f"{shown(path)}:{start + 1}: the fence is never closed")
        i += 1
        where = f"{shown(path)}:{start + 1}"
        marker = MARKER.match(previous)
        previous = ""
        if marker and marker.group(1) != "fails" and not marker.group(2):
            raise DocError(f"{where}: {marker.group(0)} says what it needs, or why it is not run")
        if language in SHELL_LANGUAGES:
            commands = (
                console_commands(body, where)
                if language == "console"
                else [Command("\n".join(body))]
            )
            blocks.append(
                Block(
                    path,
                    start + 1,
                    language,
                    commands,
                    *(marker.groups(default="") if marker else ("", "")),
                )
            )
        elif marker:
            raise DocError(f"{where}: {marker.group(0)} stands before a ```{language} block")
        elif language == "text":
            if not blocks or blocks[-1].language == "console" or blocks[-1].commands[0].expected:
                raise DocError(f"{where}: a ```text block must follow a ```sh block of its own")
            if not any(line.strip() for line in body):
                raise DocError(f"{where}: an empty ```text block")
            blocks[-1].commands[0].expected = body
        elif language not in DATA_LANGUAGES:
            raise DocError(
                f"{where}: a ```{language or '(no language)'} block: commands go in ```sh or "
                f"```console blocks (run by tests/docs), data in ```{'/'.join(DATA_LANGUAGES)}"
            )
    return blocks


def console_commands(body: list[str], where: str) -> list[Command]:
    commands: list[Command] = []
    continued = False
    for line in body:
        if continued:
            commands[-1].text += "\n" + line
        elif line.startswith("$ "):
            commands.append(Command(line[2:]))
        elif not commands:
            raise DocError(f"{where}: a ```console block starts with a command ($ ...)")
        else:
            commands[-1].expected.append(line)
        continued = (continued or line.startswith("$ ")) and line.endswith("\\")
    return commands


def inline_make_commands(path: pathlib.Path) -> list[str]:
    """The `make ...` spans of the prose (outside fences)."""
    text = re.sub(r"(?ms)^\s*```.*?^\s*```\s*$", "", path.read_text(encoding="utf-8"))
    return INLINE_MAKE.findall(text)


# ---- Matching ----------------------------------------------------------------------


def squeeze(line: str) -> str:
    return " ".join(line.split())


def line_pattern(line: str, defaults: dict[str, str]) -> str:
    """The regular expression of one expected line (see the rules above)."""
    line = re.sub(r"\$\{(\w+)\}", lambda m: defaults.get(m.group(1), m.group(0)), line)
    parts = []
    for piece in squeeze(line).split("..."):
        pattern, end = "", 0
        for number in VARYING_NUMBER.finditer(piece):
            pattern += re.escape(piece[end : number.start()]) + NUMBER
            end = number.end()
        parts.append(pattern + re.escape(piece[end:]))
    return "[^\n]*?".join(parts)


def output_pattern(expected: list[str], defaults: dict[str, str]) -> re.Pattern:
    """Consecutive lines; a line `...` for any lines between."""
    pattern, gap = "", False
    for line in joined("\n".join(expected)):
        if not line.strip():
            continue
        if line.strip() == "...":
            gap = True
            continue
        if pattern:
            pattern += "\n(?:[^\n]*\n)*?" if gap else "\n"
        pattern += line_pattern(line, defaults)
        gap = False
    return re.compile(f"^{pattern}$" if pattern else "", re.MULTILINE)


def joined(lines: str) -> list[str]:
    """Lines, those ending in a backslash joined to the next (make echoes commands so)."""
    return re.sub(r"\\\n", " ", lines).splitlines()


def printed_lines(output: str) -> str:
    """What a block printed, as it is matched: without blank lines and runs of spaces."""
    return "\n".join(squeeze(line) for line in joined(output) if line.strip())


def check_output(where: str, expected: list[str], output: str, defaults: dict[str, str]):
    if expected and not output_pattern(expected, defaults).search(printed_lines(output)):
        quoted = "\n".join(expected)
        raise DocError(
            f"{where}: the output the page quotes was not printed.\n--- quoted:\n{quoted}\n"
            f"--- printed (the session's values written as the defaults):\n{output[-6000:]}"
        )


# ---- Running -----------------------------------------------------------------------


class Session:
    """A reader's terminal: the blocks of pages, run in order, on a MODEL_PATH and ports of
    its own, offline, with the local server; `close()` stops what its blocks started.
    num_epochs: the exports' NUM_EPOCHS, for pages that show no training line."""

    def __init__(self, tmp_path: pathlib.Path, num_epochs: int | None = None):
        base = dict(os.environ)
        for name in SESSION_VARIABLES:
            base.pop(name, None)
        base["PATH"] = os.path.dirname(sys.executable) + os.pathsep + base["PATH"]
        self.defaults = {**make_env(base), **PATH_DEFAULTS}
        (tmp_path / "tmp").mkdir()
        self.own = {
            "MODEL_PATH": str(tmp_path / "models"),
            "RUN_DIR": str(tmp_path / "run"),
            "DEPLOY_OUT": str(tmp_path / "deploy-out"),
            "TMPDIR": str(tmp_path / "tmp"),
            "GRPC_PORT": str(free_port()),
            "REST_PORT": str(free_port()),
        }
        # Offline (MNIST is not downloaded), and the local server whatever this machine
        # has: Docker's container has one fixed name, and its image may be absent. Exports
        # warmed up as the tests' own are.
        quick = {"MOCK_DATA": "1", "SERVER": "local", "WARMUP_BATCH_SIZES": WARMUP_BATCH_SIZES}
        if num_epochs is not None:
            quick["NUM_EPOCHS"] = str(num_epochs)
        self.env = {**base, **self.own, **quick}
        self.env[SESSION_ID] = str(tmp_path)
        self.state = tmp_path / "session.env"
        self.output = tmp_path / "block.out"
        self.stamp = os.path.join(self.env.get("VENV", ".venv"), ".requirements.stamp")
        self.log: list[str] = []

    # The session's own values, as a reader with the defaults would see them.
    def as_defaults(self, output: str) -> str:
        for name in ("MODEL_PATH", "RUN_DIR", "DEPLOY_OUT", "TMPDIR"):
            output = output.replace(self.own[name], self.defaults[name])
        for name in ("GRPC_PORT", "REST_PORT"):
            output = re.sub(rf"\b{self.own[name]}\b", self.defaults[name], output)
        return output

    def bash(self, script: str, timeout: float = BLOCK_TIMEOUT_SECONDS) -> tuple[int, str]:
        """Runs a script in the session: (exit status, what it printed)."""
        prelude = (
            "set -eo pipefail\n"
            f'make() {{ command make -o {shlex.quote(self.stamp)} "$@"; }}\n'
            f"trap 'env -0 > {shlex.quote(str(self.state))}' EXIT\n"
        )
        # Into a file, not a pipe: a server the script starts in the background keeps
        # its output open.
        with open(self.output, "w+b") as output:
            process = subprocess.Popen(
                ["bash", "-c", prelude + script],
                cwd=ROOT,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # the script's own group, still running
                process.wait()
                output.seek(0)
                printed = output.read().decode(errors="replace")
                raise DocError(
                    f"timed out after {timeout} s:\n{script}\n{printed[-4000:]}"
                ) from None
            output.seek(0)
            printed = output.read().decode(errors="replace")
        if self.state.exists():
            pairs = self.state.read_bytes().decode().split("\0")
            self.env = dict(p.split("=", 1) for p in pairs if "=" in p)
            for name in ("_", "SHLVL", "PWD", "OLDPWD"):
                self.env.pop(name, None)
            self.state.unlink()
        return process.returncode, printed

    def dry_run(self, line: str) -> tuple[int, str]:
        """`make ARGS` as `make -n ARGS`, in the session."""
        return self.bash(f"make -n --no-print-directory {line.strip()[len('make') :]}")

    def run_block(self, block: Block) -> None:
        started = time.monotonic()
        if block.runs:
            self._run(block)
        else:
            self._dry_run(block)
        self.log.append(f"{block.where}: {time.monotonic() - started:.1f} s")
        # A page must not send the next blocks (make clean, make export) to a reader's files.
        for name in ("MODEL_PATH", "RUN_DIR", "DEPLOY_OUT"):
            if not self.env.get(name, "").startswith(self.env[SESSION_ID] + os.sep):
                raise DocError(f"{block.where}: {name} left the session's folder: {self.env}")

    def _run(self, block: Block) -> None:
        if block.language == "console":
            script = "".join(f"{c.text}\nprintf '\\n%s\\n' '{MARK}'\n" for c in block.commands)
        else:
            script = block.commands[0].text
        status, output = self.bash(script)
        output = self.as_defaults(output)
        if block.marker == "fails":
            if status == 0:
                raise DocError(f"{block.where}: marked <!-- fails -->, but it succeeded:\n{output}")
        elif status != 0:
            raise DocError(f"{block.where}: exit status {status}:\n{script}\n{output[-6000:]}")
        pieces = output.split(MARK) if block.language == "console" else [output]
        for command, printed in zip(block.commands, pieces, strict=False):
            check_output(
                f"{block.where} ({command.text})", command.expected, printed, self.defaults
            )

    def _dry_run(self, block: Block) -> None:
        script = "\n".join(c.text for c in block.commands)
        syntax = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
        if syntax.returncode != 0:
            raise DocError(f"{block.where}: not valid bash: {syntax.stderr}")
        printed = []
        for line in logical_lines(script):
            if line.split(maxsplit=1)[0] == "make":
                status, output = self.dry_run(line)
                if status != 0:
                    raise DocError(f"{block.where}: `make -n` of `{line}` failed:\n{output}")
                printed.append(self.as_defaults(output))
        if not printed and block.commands[0].expected:
            raise DocError(f"{block.where}: its ```text block needs a make command to check")
        for command in block.commands:
            check_output(block.where, command.expected, "\n".join(printed), self.defaults)

    def check_inline(self, path: pathlib.Path) -> list[str]:
        """`make -n` of each inline `make ...`; the ones that failed, with their output."""
        failed = []
        for command in inline_make_commands(path):
            status, output = self.dry_run(command)
            if status != 0:
                failed.append(f"{shown(path)}: `{command}`: {output[-2000:]}")
        return failed

    def close(self) -> None:
        """`make stop` with the session's run files, then ends what its blocks left running."""
        env = dict(self.env, RUN_DIR=self.own["RUN_DIR"])
        subprocess.run(
            ["make", "--no-print-directory", "-o", self.stamp, "stop"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            timeout=60,
        )
        end_processes(self.env[SESSION_ID])


def logical_lines(script: str) -> list[str]:
    """The commands of a script: continuation lines joined, blank and comment lines left out."""
    lines = joined(script)
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def session_processes(session_id: str) -> list[int]:
    """The processes whose environment carries the session's id: what its blocks started."""
    needle = f"{SESSION_ID}={session_id}\0".encode()
    found = []
    for environ in pathlib.Path("/proc").glob("[0-9]*/environ"):
        try:
            if needle in environ.read_bytes():
                found.append(int(environ.parent.name))
        except OSError:  # gone, or not ours
            continue
    return [pid for pid in found if pid != os.getpid()]


def end_processes(session_id: str) -> None:
    """TERM, then KILL after 10 s, to each process a session started that still runs."""
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        pids = session_processes(session_id)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while session_processes(session_id) and time.monotonic() < deadline:
            time.sleep(0.1)


def make_env(env: dict[str, str]) -> dict[str, str]:
    """`make env`: the defaults env.sh gives, in an environment that sets none of them."""
    result = subprocess.run(
        ["make", "--no-print-directory", "env"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(line.split("=", 1) for line in result.stdout.splitlines())


def run_page(session: Session, path: pathlib.Path) -> None:
    """Every block of a page in order, then the inline `make` commands."""
    for block in parse(path):
        session.run_block(block)
    failed = session.check_inline(path)
    if failed:
        raise DocError("inline make commands that `make -n` refuses:\n" + "\n".join(failed))
