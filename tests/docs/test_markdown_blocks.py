"""The runner of the documentation's commands: a broken command or a changed output fails a
page, and the output rules (`...`, varying numbers, the session's values) hold."""

import pytest
from conftest import wait_until
from markdown_blocks import (
    SESSION_ID,
    DocError,
    Session,
    output_pattern,
    parse,
    run_page,
    session_processes,
)

DEFAULTS = {"MODEL_PATH": "/tmp/jax2tf/saved_models", "REST_PORT": "8501"}


@pytest.fixture
def session(tmp_path):
    session = Session(tmp_path)
    yield session
    session.close()


def page(tmp_path, text: str):
    path = tmp_path / "page.md"
    path.write_text(text)
    return path


def matches(expected: str, printed: str) -> bool:
    return bool(output_pattern(expected.splitlines(), DEFAULTS).search(printed))


def test_a_failing_command_fails_the_page(tmp_path, session):
    path = page(tmp_path, "```sh\ntrue\nfalse\necho never\n```\n")
    with pytest.raises(DocError, match="exit status 1"):
        run_page(session, path)


def test_output_that_differs_fails_the_page(tmp_path, session):
    run_page(
        session,
        page(
            tmp_path,
            "```sh\necho 'Model mnist_flax version 1'\n```\n\n"
            "```text\nModel mnist_flax version 1\n```\n",
        ),
    )
    with pytest.raises(DocError, match="the output the page quotes was not printed"):
        run_page(
            session,
            page(
                tmp_path,
                "```sh\necho 'Model mnist_flax version 2'\n```\n\n"
                "```text\nModel mnist_flax version 1\n```\n",
            ),
        )


def test_blocks_run_in_order_and_see_what_earlier_ones_exported(tmp_path, session):
    run_page(
        session,
        page(
            tmp_path,
            "```sh\nexport GREETING=hello\n```\n\n```console\n$ echo $GREETING\nhello\n```\n",
        ),
    )
    with pytest.raises(DocError, match="not printed"):
        run_page(session, page(tmp_path, "```console\n$ echo $GREETING\nbye\n```\n"))


def test_the_session_values_are_written_back_as_the_defaults(tmp_path, session):
    run_page(
        session,
        page(
            tmp_path,
            '```sh\necho "$MODEL_PATH/x at localhost:$REST_PORT"\n```'
            "\n\n```text\n/tmp/jax2tf/saved_models/x at localhost:8501\n"
            "```\n",
        ),
    )
    assert session.own["MODEL_PATH"] != session.defaults["MODEL_PATH"]


def test_output_rules():
    printed = "a\nMODEL at /tmp/jax2tf/saved_models\nb\naccuracy 98.44%, 1.8 ms, 563 images/s\nc"
    assert matches("MODEL at ${MODEL_PATH}\nb", printed)
    assert not matches("MODEL at ${MODEL_PATH}\nc", printed)  # lines are consecutive
    assert matches("MODEL at ${MODEL_PATH}\n...\nc", printed)  # unless `...` stands between
    assert matches("accuracy 12.5%, 9 ms, 1 images/s", printed)  # numbers that vary
    assert not matches("accuracy 12.5%, 9 ms, 1 images", printed)
    assert matches("MODEL at .../saved_models", printed)
    assert not matches("MODEL at", printed)  # whole lines


def test_a_marked_block_is_checked_with_make_n_and_not_run(tmp_path, session):
    run_page(
        session,
        page(
            tmp_path,
            "<!-- needs: docker -->\n```sh\nmake stop\ndocker ps\n"
            "```\n\n```text\n... stop --pid_file=.run/server.pid ...\n"
            "```\n",
        ),
    )
    with pytest.raises(DocError, match="`make -n` of `make no-such-target` failed"):
        run_page(
            session, page(tmp_path, "<!-- needs: docker -->\n```sh\nmake no-such-target\n```\n")
        )


def test_a_block_marked_fails_must_fail(tmp_path, session):
    run_page(
        session,
        page(tmp_path, "<!-- fails -->\n```sh\necho oops; exit 3\n```\n\n```text\noops\n```\n"),
    )
    with pytest.raises(DocError, match="but it succeeded"):
        run_page(session, page(tmp_path, "<!-- fails -->\n```sh\ntrue\n```\n"))


def test_inline_make_commands_are_checked(tmp_path, session):
    run_page(session, page(tmp_path, "Run `make stop` when done.\n"))
    with pytest.raises(DocError, match="make no-such-target"):
        run_page(session, page(tmp_path, "Run `make no-such-target` when done.\n"))


def test_what_the_runner_refuses(tmp_path):
    for text, message in [
        ("```python\nprint(1)\n```\n", "commands go in"),
        ("```\nls\n```\n", "no language"),
        ("```text\nalone\n```\n", "must follow"),
        ("<!-- fails -->\n```text\nx\n```\n", "stands before"),
        ("```sh\nls\n", "never closed"),
    ]:
        with pytest.raises(DocError, match=message):
            parse(page(tmp_path, text))


def test_processes_a_page_leaves_running_are_ended(tmp_path):
    session = Session(tmp_path)
    run_page(session, page(tmp_path, '```sh\nsleep 600 &\necho $! > "$TMPDIR/sleeper.pid"\n```\n'))
    pid = int((tmp_path / "tmp" / "sleeper.pid").read_text())
    # Until the sleeper's exec ends, /proc shows it no environment: wait for it to show one.
    wait_until(lambda: pid in session_processes(session.env[SESSION_ID]))
    assert pid in session_processes(session.env[SESSION_ID])  # still running
    session.close()
    assert pid not in session_processes(session.env[SESSION_ID])
