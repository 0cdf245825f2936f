"""Progress fits its place: single clean lines in a log, one updated line in a notebook."""

from __future__ import annotations

import io

import IPython.display
import pytest
import torch

from allnc_edu import progress
from allnc_edu.data import make_gaussian_classes
from allnc_edu.methods import make_method
from allnc_edu.models import build_backbone
from allnc_edu.progress import RunBar, environment
from allnc_edu.train import fit


def _epochs(bar: RunBar, n: int, steps: int = 3) -> None:
    with bar:
        for i in range(n):
            with bar.step_bar(steps) as step:
                for _ in range(steps):
                    step.update()
            bar.update({"loss": f"{1 / (i + 1):.3f}", "test": "0.500"})


def test_environment_is_plain_off_a_tty_and_can_be_forced(monkeypatch) -> None:
    monkeypatch.delenv("ALLNC_EDU_PROGRESS", raising=False)
    assert environment(io.StringIO()) == "plain"
    for off in ("off", "0"):
        monkeypatch.setenv("ALLNC_EDU_PROGRESS", off)
        assert environment(io.StringIO()) == "off"
    monkeypatch.setenv("ALLNC_EDU_PROGRESS", "fancy")
    with pytest.raises(ValueError, match="ALLNC_EDU_PROGRESS"):
        environment(io.StringIO())


def test_plain_mode_prints_the_first_and_last_epoch_without_control_codes() -> None:
    out = io.StringIO()
    _epochs(RunBar(5, desc="ce on gaussian", mode="plain", interval=3600, stream=out), 5)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("ce on gaussian: epoch 1/5 · loss 1.000 · test 0.500")
    assert lines[1].startswith("ce on gaussian: epoch 5/5 · loss 0.200")
    assert "\x1b" not in out.getvalue() and "\r" not in out.getvalue()


def test_plain_mode_prints_every_epoch_when_the_interval_is_zero() -> None:
    out = io.StringIO()
    _epochs(RunBar(4, mode="plain", interval=0, stream=out), 4)
    assert [line.split(" · ")[0] for line in out.getvalue().splitlines()] == [
        f"epoch {i}/4" for i in range(1, 5)
    ]


class _Handle:
    def __init__(self, shown: list[dict]):
        self.shown = shown

    def update(self, bundle: dict, raw: bool = False) -> None:
        self.shown.append(bundle)


class _Shell:
    execution_count = 7


@pytest.fixture
def notebook(monkeypatch) -> tuple[list, list]:
    """A fake notebook front end: (outputs created, every state shown), shell in cell 7."""
    shown: list[dict] = []
    displays: list[dict] = []

    def display(bundle, raw=False, display_id=None):
        displays.append(bundle)
        shown.append(bundle)
        return _Handle(shown)

    monkeypatch.setattr(IPython.display, "display", display)
    monkeypatch.setattr(IPython, "get_ipython", lambda: _Shell())
    monkeypatch.setattr(progress._Board, "latest", None)
    return displays, shown


def test_notebook_mode_draws_one_text_output_and_updates_it(notebook) -> None:
    displays, shown = notebook
    _epochs(RunBar(3, desc="ce", mode="notebook"), 3)
    assert len(displays) == 1  # one output; every later change updates it in place
    assert all(set(b) == {"text/plain"} for b in shown)  # plain text: no widget, no kernel needed
    final = shown[-1]["text/plain"]
    assert final.startswith("█" * 24 + " ce: epoch 3/3 · loss 0.333 · test 0.500")


def test_runs_of_one_cell_share_one_output_a_line_each(notebook, monkeypatch) -> None:
    displays, shown = notebook
    for name in ("ce", "la", "allnc"):
        _epochs(RunBar(2, desc=name, mode="notebook"), 2)
    assert len(displays) == 1
    lines = shown[-1]["text/plain"].splitlines()
    assert [line.split(":")[0][25:] for line in lines] == ["ce", "la", "allnc"]
    monkeypatch.setattr(_Shell, "execution_count", 8)  # the next cell gets its own output
    _epochs(RunBar(2, desc="ce", mode="notebook"), 2)
    assert len(displays) == 2 and len(shown[-1]["text/plain"].splitlines()) == 1


def test_fit_logs_one_clean_line_per_run_when_not_in_a_terminal(capsys, monkeypatch) -> None:
    monkeypatch.delenv("ALLNC_EDU_PROGRESS", raising=False)
    data = make_gaussian_classes([32, 16, 8], dim=4, test_per_class=4, seed=0)
    torch.manual_seed(0)
    backbone = build_backbone("mlp", data.input_shape, hidden=(8,))
    method = make_method("ce", backbone, data.num_classes, data.counts)
    fit(method, data, epochs=3, batch_size=16, device="cpu", progress=True)
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\r" not in err
    lines = err.splitlines()
    assert lines[0].startswith("ce on gaussian: epoch 1/3 · loss ")
    assert lines[-1].startswith("ce on gaussian: epoch 3/3 · loss ")
    assert " · train " in lines[-1] and " · test " in lines[-1]


def test_values_missing_from_an_epoch_keep_their_last_value() -> None:
    out = io.StringIO()
    with RunBar(3, mode="plain", interval=0, stream=out) as bar:
        bar.update({"loss": "0.9", "test": "0.5"})
        bar.update({"loss": "0.8"})  # not evaluated this epoch
    assert out.getvalue().splitlines()[1].startswith("epoch 2/3 · loss 0.8 · test 0.5")
