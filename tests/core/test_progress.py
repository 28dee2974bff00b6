"""models.progress: a bar on a terminal, nothing in logs and pipes."""

import io

from models import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_is_drawn_on_a_terminal_and_ends_its_line(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    progress.bar("requests", 1, 4)
    progress.bar("requests", 4, 4)
    text = terminal.getvalue()
    assert "\rrequests [" + "=" * 7 + " " * 23 + "] 1/4" in text
    assert text.endswith("\rrequests [" + "=" * 30 + "] 4/4\n")


def test_no_bar_in_logs_or_pipes(monkeypatch):
    pipe = io.StringIO()  # isatty() is False
    monkeypatch.setattr("sys.stdout", pipe)
    progress.bar("requests", 1, 4)
    assert pipe.getvalue() == ""
