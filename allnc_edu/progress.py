"""Progress of a training run: one line per run that fits a terminal, a notebook and a log file.

``run_bar`` shows the epochs of one run (count, loss, accuracy) and ``step_bar`` the steps of one
epoch. Where they draw depends on where the code runs (``environment``):

- ``"terminal"`` (stderr is a TTY): a tqdm bar per run, and a transient step bar under it.
- ``"notebook"`` (an IPython kernel: JupyterLab, Colab, VS Code, papermill): one plain-text line
  per run, updated in place through a display handle (no widget, so the saved notebook shows the
  final line without a kernel); the step count of the current epoch appears on that same line.
  All runs of one cell share one output, a line each, however many runs the cell trains.
- ``"plain"`` (a log file, a pipe, CI): single lines without control codes, at most one every
  ``interval`` seconds plus the first and the last epoch.
- ``"off"``: nothing.

The environment variable ``ALLNC_EDU_PROGRESS`` (one of the four names; "0" means "off") overrides
the detection.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

MODES = ("terminal", "notebook", "plain", "off")

#: Width of the text bar drawn in notebooks, in characters.
BAR_WIDTH = 24


def environment(stream: TextIO | None = None) -> str:
    """Where progress goes: ``ALLNC_EDU_PROGRESS`` if set, else "notebook" inside an IPython
    kernel, "terminal" when ``stream`` (default stderr) is a TTY, and "plain" otherwise."""
    forced = os.environ.get("ALLNC_EDU_PROGRESS", "").strip().lower()
    forced = "off" if forced in ("0", "false", "no") else forced
    if forced:
        if forced not in MODES:
            raise ValueError(f"ALLNC_EDU_PROGRESS must be one of {MODES}, got {forced!r}")
        return forced
    if _in_kernel():
        return "notebook"
    stream = stream if stream is not None else sys.stderr
    return "terminal" if getattr(stream, "isatty", lambda: False)() else "plain"


def _in_kernel() -> bool:
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return getattr(shell, "kernel", None) is not None


def _format_postfix(postfix: Mapping[str, Any]) -> str:
    return " · ".join(f"{k} {v}" for k, v in postfix.items())


def _format_time(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


class RunBar:
    """Progress of one run over ``total`` epochs, ``done`` of them already finished (resume).

    Use as a context manager; call ``update(postfix)`` after each epoch with the numbers to show
    (e.g. ``{"loss": "0.412", "test": "0.803"}``) and ``step_bar(steps)`` for the steps of one.
    """

    def __init__(
        self,
        total: int,
        *,
        done: int = 0,
        desc: str = "",
        mode: str | None = None,
        interval: float = 10.0,
        stream: TextIO | None = None,
    ):
        self.total, self.n, self.desc, self.interval = int(total), int(done), desc, interval
        self.stream = stream if stream is not None else sys.stderr
        self.mode = mode if mode is not None else environment(self.stream)
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        self.postfix: dict[str, Any] = {}
        self._start = time.perf_counter()
        self._last_print = -float("inf")
        self._tqdm = None
        self._board: _Board | None = None
        self._row = 0

    def __enter__(self) -> RunBar:
        if self.mode == "terminal":
            from tqdm.std import tqdm

            self._tqdm = tqdm(
                total=self.total, initial=self.n, desc=self.desc, unit="epoch", file=self.stream
            )
        elif self.mode == "notebook":
            self._board = _Board.for_this_cell()
            self._row = self._board.add(self._text())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
        elif self._board is not None:
            self._board.set(self._row, self._text())

    def update(self, postfix: Mapping[str, Any] | None = None) -> None:
        """One more epoch done; show ``postfix`` (name -> formatted value) beside the count.
        Names missing from it keep their last value (accuracy measured every few epochs)."""
        self.n += 1
        self.postfix = {**self.postfix, **(postfix or {})}
        if self._tqdm is not None:
            self._tqdm.set_postfix(self.postfix, refresh=False)
            self._tqdm.update()
        elif self._board is not None:
            self._board.set(self._row, self._text())
        elif self.mode == "plain":
            now = time.perf_counter()
            first, last = self.n == 1, self.n == self.total
            if first or last or now - self._last_print >= self.interval:
                self._last_print = now
                print(self.line(), file=self.stream, flush=True)

    def step_bar(self, steps: int) -> StepBar:
        """The steps of the epoch now running: a transient bar in a terminal, a count on the
        run's own line in a notebook, nothing in a log."""
        return StepBar(self, steps)

    def line(self, step: tuple[int, int] | None = None) -> str:
        """The run's progress as one line of text (``step`` = (done, total) of this epoch)."""
        if step is None:
            parts = [f"epoch {self.n}/{self.total}"]
        else:  # an epoch is running: number it, not the last one finished
            parts = [f"epoch {self.n + 1}/{self.total}", f"step {step[0]}/{step[1]}"]
        if self.postfix:
            parts.append(_format_postfix(self.postfix))
        parts.append(_format_time(time.perf_counter() - self._start))
        head = f"{self.desc}: " if self.desc else ""
        return head + " · ".join(parts)

    def _text(self, step: tuple[int, int] | None = None) -> str:
        filled = round(BAR_WIDTH * self.n / max(1, self.total))
        return "█" * filled + "░" * (BAR_WIDTH - filled) + f" {self.line(step)}"


class _Board:
    """The one plain-text output that the runs of one notebook cell share, a line per run."""

    latest: _Board | None = None

    def __init__(self, cell: int | None):
        from IPython.display import display

        self.cell, self.lines = cell, []
        self.handle = display({"text/plain": ""}, raw=True, display_id=True)

    @classmethod
    def for_this_cell(cls) -> _Board:
        """The board of the cell now running (a new one in a new cell)."""
        ipython = sys.modules.get("IPython")
        shell = ipython.get_ipython() if ipython is not None else None
        cell = getattr(shell, "execution_count", None)
        if cls.latest is None or cell is None or cls.latest.cell != cell:
            cls.latest = cls(cell)
        return cls.latest

    def add(self, text: str) -> int:
        """Append a line; returns its row."""
        self.lines.append(text)
        self.set(len(self.lines) - 1, text)
        return len(self.lines) - 1

    def set(self, row: int, text: str) -> None:
        self.lines[row] = text
        self.handle.update({"text/plain": "\n".join(self.lines)}, raw=True)


class StepBar:
    """Steps of one epoch of a ``RunBar``; ``update()`` after each step."""

    #: Seconds between redraws of the notebook line while an epoch runs.
    NOTEBOOK_REFRESH = 0.5

    def __init__(self, run: RunBar, steps: int):
        self.run, self.total, self.n = run, int(steps), 0
        self._tqdm = None
        self._last_draw = time.perf_counter()

    def __enter__(self) -> StepBar:
        if self.run.mode == "terminal":
            from tqdm.std import tqdm

            self._tqdm = tqdm(
                total=self.total, leave=False, unit="step", file=self.run.stream, position=1
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._tqdm is not None:
            self._tqdm.close()

    def update(self) -> None:
        """One more step done."""
        self.n += 1
        if self._tqdm is not None:
            self._tqdm.update()
        elif self.run._board is not None:
            now = time.perf_counter()
            if now - self._last_draw >= self.NOTEBOOK_REFRESH:
                self._last_draw = now
                self.run._board.set(self.run._row, self.run._text(step=(self.n, self.total)))


def run_bar(total: int, *, done: int = 0, desc: str = "", enabled: bool = True) -> RunBar:
    """The progress of one run of ``total`` epochs (``done`` already finished); ``enabled=False``
    shows nothing. See the module docstring for where it draws."""
    return RunBar(total, done=done, desc=desc, mode=None if enabled else "off")
