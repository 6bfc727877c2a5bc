"""What a command is doing, while it does it: one spinner line on stderr, on a terminal only.

`step("fitting LightGBM")` shows a spinner with the text for the length of a block (nested
steps change the text and put it back); `counter(total, "reasons")` returns a callback that
adds done rows to the text ("reasons: 12,000 of 50,000 accounts"). Nothing is shown when
stderr is not a terminal, under CI (`CI` set) or with `TERM=dumb`: logs and pipes stay clean.
Log records pass above the spinner (see `StderrHandler`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

_status: Any = None  # the live rich Status, while one is shown


def interactive() -> bool:
    """Whether to show progress: stderr is a terminal, not CI, not a dumb terminal."""
    stream = sys.stderr
    return (
        hasattr(stream, "isatty")
        and stream.isatty()
        and not os.environ.get("CI")
        and os.environ.get("TERM") != "dumb"
    )


@contextlib.contextmanager
def step(text: str) -> Iterator[None]:
    """A spinner with `text` on stderr while the block runs (on a terminal only)."""
    global _status
    if not interactive():
        yield
        return
    if _status is not None:  # inside another step: say what part of it runs now
        before = _status.status
        _status.update(text)
        try:
            yield
        finally:
            _status.update(before)
        return
    from rich.console import Console

    with Console(stderr=True).status(text) as status:
        _status = status
        try:
            yield
        finally:
            _status = None


def counter(total: int, text: str, unit: str = "accounts") -> Callable[[int], None]:
    """A callback `done(n)` that adds n to a count shown in the running step's text."""
    seen = [0]

    def done(n: int) -> None:
        seen[0] += n
        if _status is not None:
            share = seen[0] / total if total else 1.0
            _status.update(f"{text}: {seen[0]:,} of {total:,} {unit} ({share:.0%})")

    return done


class StderrHandler(logging.StreamHandler):
    """A log handler that writes to the current sys.stderr (rich swaps it for a proxy while a
    spinner runs, so that log lines print above the spinner instead of through it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # set by StreamHandler.__init__; always sys.stderr
        pass
