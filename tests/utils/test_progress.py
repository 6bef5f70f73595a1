"""Progress: a live bar on a terminal, plain periodic lines elsewhere, nothing when disabled."""

import io
import logging

from resdet.utils.progress import Progress, format_fields


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_when_not_a_terminal(monkeypatch):
    stream = io.StringIO()
    now = [0.0]
    monkeypatch.setattr("resdet.utils.progress.time.perf_counter", lambda: now[0])
    progress = Progress(4, "generating shapes", stream=stream, interval_s=10)
    for t, step in ((1.0, dict(loss=0.5)), (11.0, {}), (12.0, dict(loss=0.25, lr=0.01)), (13.0, {})):
        now[0] = t  # lines at t=11 (interval) and at the end (always), none at t=1 or t=12
        progress.update(1, **step)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("generating shapes: 2/4 (50%) 0.182 it/s eta 0:00:11")
    assert lines[0].endswith("loss 0.5")
    assert lines[1].startswith("generating shapes: 4/4 (100%) ") and lines[1].endswith("loss 0.25 lr 0.01")
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()


def test_bar_on_a_terminal_and_disabled_elsewhere(monkeypatch):
    monkeypatch.delenv("RESDET_NO_PROGRESS", raising=False)
    terminal = FakeTerminal()
    with Progress(3, "eval", stream=terminal) as progress:
        assert progress.live
        for _ in range(3):
            progress.update(1, bbox_AP=0.5)
        progress.write("a table line")
    out = terminal.getvalue()
    assert "eval" in out and "3/3" in out and "bbox_AP 0.5" in out and "a table line" in out
    monkeypatch.setenv("RESDET_NO_PROGRESS", "1")
    assert not Progress(3, "eval", stream=FakeTerminal()).live
    quiet = io.StringIO()
    off = Progress(3, "x", stream=quiet, enabled=False, interval_s=0)
    off.update(3)
    assert quiet.getvalue() == "" and off.done == 3


def test_lines_go_to_a_logger_and_unknown_totals(caplog):
    logger = logging.getLogger("test_progress_lines")
    with caplog.at_level(logging.INFO, logger="test_progress_lines"):
        progress = Progress(None, "indexing", stream=io.StringIO(), interval_s=0, logger=logger)
        progress.update(5)
    assert caplog.records[-1].getMessage().startswith("indexing: 5 ")
    assert "eta" not in caplog.records[-1].getMessage()
    assert format_fields({"loss": 0.123456, "iter": 3, "skip": None}) == "loss 0.1235 iter 3"


def test_an_inner_loop_shares_the_bar_on_screen(monkeypatch):
    monkeypatch.delenv("RESDET_NO_PROGRESS", raising=False)
    terminal = FakeTerminal()
    with Progress(2, "train", stream=terminal) as outer:
        with Progress(3, "validation", stream=terminal) as inner:
            assert inner.live and inner._rich is outer._rich  # one display, two lines
            inner.update(3)
        outer.update(2, loss=0.5)
    assert "validation" in terminal.getvalue() and "train" in terminal.getvalue()
