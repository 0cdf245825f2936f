"""Checks that name the mistake: the machinery behind exercises, predictions and questions.

A check returns True (correct), False (not yet: one sentence naming the mistake) or None (not
attempted: the answer is ``...`` or None). It never raises, whatever it is given, so Run All of
a student notebook never stops at a blank or a typo. Every verdict also goes into a log kept in
this process; :func:`dump_verdicts` prints it as one tagged JSON line, which is how
``grading.grade`` collects the verdicts of an executed notebook.

Three kinds of item share this machinery:

- :class:`Exercise`: ``check(answer)``, ``hint()`` (successive levels), ``solution()``,
  ``reference()`` (an answer that passes, for tests); its ``judge`` returns a sentence of praise
  or raises :class:`Mistake` with the diagnosis.
- :class:`Prediction`: an exercise whose answer is a prediction made before a result appears;
  :meth:`Prediction.reveal` then compares it with the measured value and explains.
- :class:`Question`: one questionnaire item, multiple choice or numeric, with its explanation.
"""

from __future__ import annotations

import json
import numbers
import string
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .fmt import fixed

VERDICT_TAG = "ALLNC-EDU-VERDICTS"
NOTEBOOKS = ("01", "02", "03", "04", "05")
KINDS = ("code", "explore", "predict", "question")
BLANK = "answer = ...  # YOUR CODE HERE"
RTOL, ATOL = 1e-4, 1e-6  # answers match within these: float32 passes, diagnosed mistakes do not
_SYMBOLS = {True: "✓", False: "✗", None: "○"}
_LABELS = {True: "correct", False: "not yet", None: "not attempted"}

_LOG: dict[str, dict] = {}


class Mistake(Exception):
    """A diagnosed mistake; its message is the one sentence the student reads."""


class NotAttempted(Exception):
    """The answer is still a blank (e.g. a function whose body returns ``...``)."""


def is_blank(answer: Any) -> bool:
    """Whether ``answer`` is a blank: ``...`` (Ellipsis) or None."""
    return answer is None or answer is Ellipsis


def describe(value: Any) -> str:
    """A short description of any value for a message: its type, and its shape or text."""
    if isinstance(value, str):
        shown = value if len(value) <= 30 else value[:27] + "..."
        return f"the text {shown!r}"
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"a {type(value).__name__} of shape {tuple(shape)}"
    if isinstance(value, list | tuple):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"a {type(value).__name__}"


def as_array(answer: Any, expects: str) -> np.ndarray:
    """``answer`` as a float64 NumPy array, or a :class:`Mistake` saying what was expected.

    Accepts tensors (any device, with or without a graph), arrays, nested lists and numbers.
    """
    if isinstance(answer, str | bytes | dict | set | bool) or callable(answer):
        raise Mistake(f"expected {expects}, got {describe(answer)}.")
    try:
        if isinstance(answer, torch.Tensor):
            array = answer.detach().to("cpu", torch.float64).numpy()
        else:
            array = np.asarray(answer, dtype=np.float64)
    except (TypeError, ValueError, RuntimeError):
        raise Mistake(f"expected {expects}, got {describe(answer)}.") from None
    if not np.isfinite(array).all():
        raise Mistake(f"your answer contains NaN or infinite values; expected {expects}.")
    return array


def as_number(answer: Any, expects: str = "a number") -> float:
    """``answer`` as a float: a number, a one-element array or tensor, or a numeric text."""
    if isinstance(answer, str):
        try:
            answer = float(answer.strip().rstrip("%"))
        except ValueError:
            raise Mistake(f"expected {expects}, got {describe(answer)}.") from None
    array = as_array(answer, expects)
    if array.size != 1:
        raise Mistake(f"expected {expects}, got {array.size} values.")
    return float(array.reshape(()))


def as_tensors(**arrays: Any) -> dict[str, torch.Tensor]:
    """Each array (nested lists, NumPy) as a tensor, keeping its dtype: an exercise's inputs."""
    return {name: torch.tensor(np.asarray(value)) for name, value in arrays.items()}


def close(value: Any, reference: Any) -> bool:
    """Whether an answer equals the reference within :data:`RTOL` and :data:`ATOL`."""
    return bool(np.allclose(value, reference, rtol=RTOL, atol=ATOL))


def match_mistake(value: np.ndarray, candidates: Sequence[tuple[Any, str]]) -> None:
    """Raise the :class:`Mistake` of the first ``(wrong answer, sentence)`` that ``value``
    matches (same shape, equal within :data:`RTOL` and :data:`ATOL`); return otherwise."""
    for candidate, sentence in candidates:
        wrong = np.asarray(candidate, dtype=np.float64)
        if wrong.shape == value.shape and close(value, wrong):
            raise Mistake(sentence)


def choice_index(answer: Any, options: Sequence[str]) -> int:
    """The option an answer picks: a letter ("B", "b", "B)"), the option's text, or its
    position counting from 0; anything else is a :class:`Mistake` listing what is allowed."""
    letters = string.ascii_uppercase[: len(options)]
    allowed = f"one letter from A to {letters[-1]} (or its position counting from 0)"
    if isinstance(answer, str):
        text = answer.strip().rstrip(").:").strip()
        if len(text) == 1 and text.upper() in letters:
            return letters.index(text.upper())
        for i, option in enumerate(options):
            if text.lower() == option.lower():
                return i
    elif isinstance(answer, numbers.Integral) and not isinstance(answer, bool):
        if 0 <= int(answer) < len(options):
            return int(answer)
    raise Mistake(f"expected {allowed}, got {describe(answer)}.")


def letter(index: int) -> str:
    """The letter of option ``index`` (0 -> "A")."""
    return string.ascii_uppercase[index]


def choice_judge(
    options: Sequence[str], correct: int, why_not: dict[int, str], praise: str
) -> Callable[[Any], str]:
    """A judge for multiple choice: ``praise`` for the correct option, the option's own
    ``why_not`` sentence for a wrong one."""

    def judge(answer: Any) -> str:
        picked = choice_index(answer, options)
        if picked == correct:
            return praise
        reason = why_not.get(picked, "not what happens; the explanation says why")
        raise Mistake(f"{letter(picked)}: {reason.rstrip('.')}.")

    return judge


def number_judge(
    low: float,
    high: float,
    praise: str,
    mistakes: Sequence[tuple[float, float, str]] = (),
    expects: str = "a number",
    otherwise: Callable[[float], str] | None = None,
) -> Callable[[Any], str]:
    """A judge for a number: correct inside [low, high]; each ``(value, tolerance, sentence)``
    of ``mistakes`` names a typical wrong value; any other value gets ``otherwise(value)``, by
    default a sentence saying which side of [low, high] it is on."""

    def judge(answer: Any) -> str:
        value = as_number(answer, expects)
        if low <= value <= high:
            return praise
        for wrong, tolerance, sentence in mistakes:
            if abs(value - wrong) <= tolerance:
                raise Mistake(sentence)
        if otherwise is not None:
            raise Mistake(otherwise(value))
        side = "too small" if value < low else "too large"
        raise Mistake(f"{value:g} is {side}: the answer lies between {low:g} and {high:g}.")

    return judge


def record(item_id: str, notebook: str, kind: str, verdict: bool | None, message: str) -> None:
    """Keep the latest verdict of an item in this process's log."""
    _LOG[item_id] = {
        "id": item_id,
        "notebook": notebook,
        "kind": kind,
        "verdict": verdict,
        "message": message,
    }


def verdicts() -> list[dict]:
    """The latest verdict of every item checked in this process, in the order first checked:
    dicts with ``id``, ``notebook``, ``kind``, ``verdict`` (True, False or None), ``message``."""
    return [dict(entry) for entry in _LOG.values()]


def clear_verdicts() -> None:
    """Forget every recorded verdict."""
    _LOG.clear()


def dump_verdicts(file=None) -> None:
    """Print the log as one line, ``ALLNC-EDU-VERDICTS [...]`` (JSON), for the grader."""
    print(f"{VERDICT_TAG} {json.dumps(verdicts())}", file=file or sys.stdout)


def parse_verdicts(text: str) -> list[dict] | None:
    """The verdicts of the last tagged line in ``text`` (see :func:`dump_verdicts`), or None."""
    lines = [line for line in text.splitlines() if line.startswith(VERDICT_TAG + " ")]
    return json.loads(lines[-1][len(VERDICT_TAG) + 1 :]) if lines else None


def widgets_available() -> bool:
    """Whether widgets can show: ipywidgets imports and a Jupyter kernel is running."""
    try:
        import ipywidgets  # noqa: F401  (optional: every widget has a text fallback)
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def verdict_line(item_id: str, verdict: bool | None, message: str) -> str:
    """How a verdict reads: a symbol, the item, correct / not yet / not attempted, a sentence."""
    return f"{_SYMBOLS[verdict]} {item_id} {_LABELS[verdict]}: {message}"


@dataclass(eq=False, kw_only=True)
class Exercise:
    """One exercise of a notebook.

    Attributes:
        id: "NN-name", NN the notebook. notebook: "01".."05". kind: "code", "explore" or
            "predict". title: a few words. prompt: the task as the student reads it (one
            paragraph). judge: answer -> a sentence of praise, raising :class:`Mistake` (a
            diagnosis) or :class:`NotAttempted`. reference_answer: () -> an answer that passes.
        hints: from gentle to explicit. solution_text: the solution code or reasoning.
        blank: the line that replaces the solution in a student notebook. starter: the whole
            starter cell of a code exercise ("" for others). expects: what an answer looks like.
        make_given: () -> the exercise's inputs (a dict), or None; see :attr:`given`.
    """

    id: str
    notebook: str
    kind: str
    title: str
    prompt: str
    judge: Callable[[Any], str]
    reference_answer: Callable[[], Any]
    hints: tuple[str, ...]
    solution_text: str
    blank: str = BLANK
    starter: str = ""
    expects: str = "an answer"
    make_given: Callable[[], dict] | None = None
    _hints_shown: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.notebook not in NOTEBOOKS or not self.id.startswith(self.notebook + "-"):
            raise ValueError(f"exercise {self.id!r}: id must start with its notebook, e.g. '01-'")
        if self.kind not in KINDS[:3] or not self.hints:
            raise ValueError(f"exercise {self.id!r}: kind must be one of {KINDS[:3]}, with hints")

    @property
    def given(self) -> dict:
        """The exercise's inputs, a fresh copy on every access (so editing them in place
        cannot change what the check compares against); empty when it has none."""
        return {} if self.make_given is None else self.make_given()

    def check(self, answer: Any) -> bool | None:
        """Judge ``answer``; print the verdict in one line and return True, False or None."""
        verdict, message = self._judge(answer)
        record(self.id, self.notebook, self.kind, verdict, message)
        print(verdict_line(self.id, verdict, message))
        return verdict

    def _judge(self, answer: Any) -> tuple[bool | None, str]:
        blank = (
            f"replace the ... with your answer and run the cell again "
            f'(stuck? EXERCISES["{self.id}"].hint()).'
        )
        if is_blank(answer):
            return None, blank
        try:
            return True, self.judge(answer)
        except NotAttempted:
            return None, blank
        except Mistake as mistake:
            return False, str(mistake)
        except Exception as error:  # a check never raises: the student's cell must run on
            return False, f"could not check your answer ({type(error).__name__}: {error})."

    def hint(self, level: int | None = None) -> None:
        """Print a hint: the next level on each call, or level ``level`` (from 1). Nothing is
        returned, so a notebook shows the hint once."""
        if level is None:
            self._hints_shown = min(self._hints_shown + 1, len(self.hints))
            level = self._hints_shown
        level = min(max(int(level), 1), len(self.hints))
        print(f"Hint {level} of {len(self.hints)}: {self.hints[level - 1]}")

    def solution(self) -> None:
        """Print the solution (code or reasoning)."""
        print(self.solution_text)

    def reference(self) -> Any:
        """An answer that this exercise's check accepts (what a correct student passes)."""
        return self.reference_answer()


@dataclass(eq=False, kw_only=True)
class Prediction(Exercise):
    """A prediction recorded before a result appears, and revealed against the measured value.

    It has :class:`Exercise`'s fields, with ``kind="predict"`` and a starter that defaults to
    the ``predictions.predict`` call and the blank, and these:

    Attributes:
        options: the choices of a multiple-choice prediction, or None for a number.
        observe: measured value -> (what happened: an option index or a number, a sentence
            describing the measurement).
        explanation: why it happens, shown by :meth:`reveal`.
    """

    options: tuple[str, ...] | None
    observe: Callable[[Any], tuple[int | float, str]]
    explanation: str

    def __post_init__(self) -> None:
        super().__post_init__()
        self.starter = self.starter or f'predictions.predict("{self.id}")\n{self.blank}'

    def reveal(self, prediction: Any, measured: Any) -> bool | None:
        """Check the prediction, then print what the run measured beside it and why.

        Returns the prediction's verdict (None when no prediction was made). Never raises.
        """
        verdict = self.check(prediction)
        try:
            outcome, described = self.observe(measured)
            print(f"Measured: {described}{self._compare(prediction, outcome)}")
        except Exception as error:  # the reveal must not stop Run All either
            print(f"Measured: could not read the measured value ({type(error).__name__}: {error}).")
        print(f"Why: {self.explanation}")
        return verdict

    def _compare(self, prediction: Any, outcome: int | float) -> str:
        if self.options is not None:
            happened = f", that is {letter(int(outcome))}) {self.options[int(outcome)]}"
            if is_blank(prediction):
                return f"{happened}. You made no prediction."
            try:
                picked = choice_index(prediction, self.options)
            except Mistake:
                return f"{happened}. Your prediction was not one of the options."
            same = (
                "matches your prediction"
                if picked == outcome
                else f"you predicted {letter(picked)}"
            )
            return f"{happened}: {same}."
        if is_blank(prediction):
            return ". You made no prediction."
        try:
            value = as_number(prediction)
        except Mistake:
            return ". Your prediction was not a number."
        return f"; your prediction {value:g} was off by {fixed(abs(value - outcome), 3)}."


@dataclass(eq=False, kw_only=True)
class Question:
    """One questionnaire item: multiple choice (``options``, ``answer`` the correct index) or
    numeric (``options`` None, correct within ``tolerance`` of ``answer``).

    ``why_not`` maps a wrong option (multiple choice) to its own sentence, ``mistakes`` names
    typical wrong numbers (``(value, tolerance, sentence)``); ``explanation`` is shown after
    every answer.
    """

    id: str
    notebook: str
    text: str
    options: tuple[str, ...] | None
    answer: float
    explanation: str
    tolerance: float = 0.0
    why_not: dict[int, str] = field(default_factory=dict)
    mistakes: tuple[tuple[float, float, str], ...] = ()

    def __post_init__(self) -> None:
        multiple = self.options is not None
        if multiple and not (
            0 <= self.answer < len(self.options) and self.answer == int(self.answer)
        ):
            raise ValueError(f"question {self.id!r}: answer must index its options")
        if self.notebook not in NOTEBOOKS or not self.id.startswith(self.notebook + "-"):
            raise ValueError(f"question {self.id!r}: id must start with its notebook, e.g. '01-'")

    def reference(self) -> str | float:
        """The correct answer: a letter, or the number."""
        return letter(int(self.answer)) if self.options is not None else self.answer

    def evaluate(self, answer: Any) -> tuple[bool | None, str]:
        """Judge and record ``answer`` without printing: (verdict, the verdict's line)."""
        if is_blank(answer):
            verdict, message = None, "give your answer (a letter or a number) and run it again."
        else:
            try:
                verdict, message = True, self._judge(answer)
            except Mistake as mistake:
                verdict, message = False, str(mistake)
            except Exception as error:  # never raise on what a student types
                verdict, message = False, f"could not read {describe(answer)} ({error})."
        record(self.id, self.notebook, "question", verdict, message)
        return verdict, verdict_line(self.id, verdict, message)

    def check(self, answer: Any) -> bool | None:
        """Judge ``answer``, print the verdict and the explanation; return True, False or None."""
        verdict, line = self.evaluate(answer)
        print(line if verdict is None else f"{line}\n  {self.explanation}")
        return verdict

    def _judge(self, answer: Any) -> str:
        if self.options is not None:
            picked = choice_index(answer, self.options)
            if picked != self.answer:
                reason = self.why_not.get(picked, "not the answer; the explanation below says why")
                raise Mistake(f"{letter(picked)}: {reason.rstrip('.')}.")
            return f"{letter(picked)}) {self.options[picked]}."
        judge = number_judge(
            self.answer - self.tolerance,
            self.answer + self.tolerance,
            praise=f"{self.answer:g}.",
            mistakes=self.mistakes,
        )
        return judge(answer)
