"""Predict, then reveal: a prediction made before a result appears, compared with the run.

In a notebook, before the cell that trains (or simulates)::

    predictions.predict("03-predict-squeeze")   # a Dropdown (or FloatText) with a Record button
    PREDICTION = ...  # or write it here: "A", "B" or "C" (no widget, or a graded notebook)

and after it, with the measured value::

    predictions.reveal("03-predict-squeeze", PREDICTION, measured=(balanced.mc_means, ce.mc_means))

``reveal`` uses ``PREDICTION`` when it is filled in, else what the widget recorded; it checks the
prediction (``Prediction.check``, recorded for grading like every check), prints what the run
measured beside it, and why. The widget uses only ipywidgets APIs present in versions 7 and 8;
without ipywidgets, or outside a Jupyter kernel, ``predict`` prints the question and asks for
``PREDICTION = ...`` instead.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .feedback import (
    Prediction,
    choice_judge,
    is_blank,
    letter,
    number_judge,
    widgets_available,
)
from .geometry import cosine_matrix
from .groups import minority_classes

_RECORDED: dict[str, Any] = {}
_CHOOSE = "choose an option"


def _choice(
    exercise_id: str,
    title: str,
    prompt: str,
    options: Sequence[str],
    correct: int,
    why_not: dict[int, str],
    observe: Callable[[Any], tuple[int, str]],
    explanation: str,
    hints: tuple[str, ...],
) -> Prediction:
    """A multiple-choice prediction."""
    letters = ", ".join(f'"{letter(i)}"' for i in range(len(options)))
    return Prediction(
        id=exercise_id,
        notebook=exercise_id[:2],
        kind="predict",
        title=title,
        prompt=prompt,
        judge=choice_judge(
            options,
            correct,
            why_not,
            praise=f"{letter(correct)} is what theory expects; the run shows what happened.",
        ),
        reference_answer=lambda: letter(correct),
        hints=hints,
        solution_text=f"{letter(correct)}) {options[correct]}. {explanation}",
        blank=f"PREDICTION = ...  # YOUR PREDICTION HERE: {letters}",
        expects=f"one of {letters}",
        options=tuple(options),
        observe=observe,
        explanation=explanation,
    )


def _gap(before: float, after: float, margin: float) -> int:
    """0 when ``after`` is within ``margin`` of ``before``, 1 when above it, 2 when below."""
    return 0 if abs(after - before) <= margin else (1 if after > before else 2)


def _observe_order(measured: Any) -> tuple[int, str]:
    """Which settles first in a UFM history: NC1 (to 1% of its start) or the ETF (< 0.01)."""
    history = getattr(measured, "history", measured)
    start = history[0]["nc1"]
    nc1_step = next(r["step"] for r in history if r["nc1"] < 1e-2 * start)
    etf_step = next(r["step"] for r in history if r["etf_distance_means"] < 1e-2)
    outcome = 0 if nc1_step < etf_step else (1 if nc1_step > etf_step else 2)
    return outcome, (
        f"NC1 fell to 1% of its start by step {nc1_step}; the means' ETF distance fell below "
        f"0.01 at step {etf_step}"
    )


def _observe_fixed_etf(measured: Any) -> tuple[int, str]:
    """How the raw minority means of a fixed-ETF UFM result moved (``ufm.UFMResult``)."""
    counts = measured.counts.tolist()
    minority = minority_classes(counts)
    majority = [k for k in range(len(counts)) if k not in minority]
    means = measured.means.numpy()
    cosines = cosine_matrix(means).numpy()
    own = cosine_matrix(means, measured.weight).numpy().diagonal()
    etf_cosine = -1 / (len(counts) - 1)
    pair = float(np.mean([cosines[i, j] for i in minority for j in minority if i < j]))
    norms = np.linalg.norm(means, axis=1)
    ratio = float(norms[minority].mean() / norms[majority].mean())
    if own[minority].min() < 0.99:
        outcome = 3
    elif pair > etf_cosine + 0.02:
        outcome = 0
    else:
        outcome = 1 if ratio < 0.9 else 2
    return outcome, (
        f"raw minority means at cosine {pair:+.3f} to each other (ETF {etf_cosine:+.3f}), "
        f"{own[minority].min():.3f} to their own classifier rows, {ratio:.2f} times the "
        "majority's length"
    )


def _observe_squeeze(measured: Any) -> tuple[int, str]:
    balanced, long_tailed = (float(x) for x in measured)
    return _gap(balanced, long_tailed, 0.1), (
        f"MC_H {balanced:+.3f} on balanced data, {long_tailed:+.3f} at IR 100"
    )


def _observe_etf_means(measured: Any) -> tuple[int, str]:
    value, etf_cosine = float(measured), -1 / 9
    return _gap(etf_cosine, value, 0.1), f"MC_H {value:+.3f} (ETF value {etf_cosine:+.3f})"


def _observe_minority_accuracy(measured: Any) -> tuple[float, str]:
    percent = 100 * float(measured)
    return percent, f"minority accuracy {percent:.1f}%"


_ABLATIONS = ("allnc-no-hycon", "allnc-no-p2p", "allnc-no-gbbn")


def _observe_ablation(measured: Mapping[str, float]) -> tuple[int, str]:
    present = [name for name in _ABLATIONS if name in measured]
    if len(present) < 2:
        raise ValueError(f"this run trained too few of {', '.join(_ABLATIONS)} to compare")
    lowest = min(present, key=lambda name: measured[name])
    shown = ", ".join(f"{name} {100 * measured[name]:.1f}%" for name in present)
    return _ABLATIONS.index(lowest), f"minority accuracy {shown}"


def _observe_groups(measured: Any) -> tuple[int, str]:
    majority, minority = (100 * float(x) for x in measured)
    return _gap(majority, minority, 10.0), (
        f"majority accuracy {majority:.1f}%, minority {minority:.1f}%"
    )


_PREDICTIONS = (
    _choice(
        "01-predict-order",
        "Which collapses first?",
        "The UFM trains features and classifier together on balanced data. Which happens first: "
        "the features collapsing onto their class means (NC1), or the class means reaching the "
        "simplex ETF (NC2)?",
        (
            "NC1 first: the features gather at their means while the means are far from an ETF",
            "NC2 first: the means form the ETF, then the features gather",
            "both at the same step",
        ),
        0,
        {
            1: "the means can only settle once the classes are separated; the spread around "
            "each mean shrinks much faster",
            2: "the two run on very different clocks",
        },
        _observe_order,
        "every feature follows the same gradient as its class mean plus a term that shrinks "
        "its own deviation; that deviation dies out within a few steps, while arranging the "
        "means into an ETF takes the slow, global rearrangement of all classes.",
        (
            "Compare how many numbers each property has to fix: one deviation per sample, or a "
            "shape made of all the classes.",
        ),
    ),
    _choice(
        "02-predict-fixed-etf",
        "A fixed ETF classifier: what do the raw minority means do?",
        "W is fixed to a simplex ETF (K = 4) and only the features train; the imbalance ratio "
        "grows to 1000. What happens to the raw (uncentred) minority class means?",
        (
            "they turn towards each other, away from their classifier rows",
            "they stay on their own classifier rows, at the ETF angle, only shrinking",
            "nothing changes: same direction, same length",
            "they turn towards the majority classifier rows",
        ),
        1,
        {
            0: "with W fixed, each mean's best direction is still its own classifier row",
            2: "a class with few samples weighs little in the loss, and the feature penalty "
            "shortens it",
            3: "turning towards another class's row would only raise that class's loss",
        },
        _observe_fixed_etf,
        "with W fixed, a mean's direction is best along its own classifier row at any imbalance; "
        "only its length is traded against the feature penalty, and the minority's few samples "
        "buy little length. The centred MC_H still rises: subtracting a global mean from means "
        "of unequal length tilts the short minority means towards each other.",
        (
            "Which term of the objective could change a minority mean's direction, once W is "
            "fixed? Which one its length?",
        ),
    ),
    _choice(
        "03-predict-squeeze",
        "Does cross-entropy squeeze the minority class means?",
        "The same CNN trains with cross-entropy on balanced MNIST-1D and at imbalance ratio 100. "
        "Compared with the balanced run, the long-tailed run's MC_H (mean cosine of the centred "
        "minority class means) will be:",
        ("about the same (within 0.1)", "clearly higher: squeezed together", "clearly lower"),
        1,
        {
            0: "the five minority digits have 5 signals each: little pulls their means apart",
            2: "lower would mean the minority means spread further apart than on balanced "
            "data, as if they had more data, not less",
        },
        _observe_squeeze,
        "with 5 signals against 500, the minority classes contribute little to the loss: their "
        "class means come out shorter and less distinct, and centred on the global mean they "
        "bunch together (so do their classifier rows, MC_W). Whether that squeeze is length or "
        "direction, MC_H alone cannot say: the notebook measures it.",
        ("In notebook 02 the UFM's minority means followed the classifiers as the ratio grew.",),
    ),
    _choice(
        "03-predict-etf-means",
        "A fixed ETF classifier: do the means follow?",
        "Now the classifier is fixed to a simplex ETF (MC_W = -1/9 by construction) and the "
        "features train with dot regression at IR 100 (ten classes). Their MC_H will be:",
        ("at the ETF value -1/9, like MC_W", "well above -1/9: still squeezed", "well below -1/9"),
        1,
        {
            0: "fixing W does not fix the features: nothing ties the centred minority means to "
            "their rows",
            2: "below would mean the minority means spread further apart than at balance, as "
            "if they had more data, not less",
        },
        _observe_etf_means,
        "the classifier cannot squeeze, but the minority features still get little training "
        "signal and their means stay short; centred on the global mean, they point close "
        "together and away from their fixed rows, so self-duality (NC3) breaks: the observation "
        "AllNC starts from. Whether that squeeze is length or direction, the raw and the "
        "normalised means tell (notebook 02: in the UFM it is length alone).",
        ("Notebook 02's teaser: fixing W held the classifier, not the centred means.",),
    ),
    Prediction(
        id="03-predict-minority-accuracy",
        notebook="03",
        kind="predict",
        title="How accurate is CE on the minority digits?",
        prompt="Cross-entropy at IR 100: five digits with 500 training signals, five with 5. "
        "Predict its test accuracy on the five minority digits, in percent.",
        judge=number_judge(
            0,
            35,
            praise="a low number: CE seldom predicts a class it saw five times.",
            mistakes=((90.0, 15.0, "that is about the majority digits' accuracy."),),
            expects="a percentage between 0 and 100",
        ),
        reference_answer=lambda: 10.0,
        hints=(
            "A classifier that never predicts a minority digit scores 0% on it; what does "
            "the training prior push towards?",
        ),
        solution_text="Far below the majority's accuracy: 0% to about 30% (10% is a fair guess).",
        blank="PREDICTION = ...  # YOUR PREDICTION HERE: a percentage",
        expects="a percentage",
        options=None,
        observe=_observe_minority_accuracy,
        explanation="the training prior favours the five large classes by 100 to 1, and "
        "cross-entropy learns that prior; on a balanced test set most minority signals go to a "
        "majority digit.",
    ),
    _choice(
        "04-predict-ablation",
        "Which AllNC component matters most for the minority digits?",
        "AllNC is trained with one component removed at a time. Removing which one will cost "
        "the most minority accuracy?",
        (
            "HyCon (features onto their means, NC1)",
            "P2P (means and classifiers onto one ETF)",
            "GBBN (the re-balancing branch and schedule)",
        ),
        2,
        {
            0: "HyCon tightens each class around its mean; it does not re-balance the classes",
            1: "P2P fixes the geometry of means and classifiers; it does not re-balance classes",
        },
        _observe_ablation,
        "only GBBN re-balances: its second branch sees class-balanced batches and takes over the "
        "loss as training ends. Without it nothing counters the 100-to-1 prior, and the minority "
        "digits are lost as under CE.",
        ("Which component changes how often a minority digit is seen?",),
    ),
    _choice(
        "05-predict-groups",
        "The long-tail gap",
        "Cross-entropy on the long-tailed benchmark: its accuracy on the minority classes, "
        "compared with the majority classes, will be:",
        ("within 10 points", "10 or more points higher", "10 or more points lower"),
        2,
        {
            0: "the tail classes have tens of images against thousands",
            1: "no method here sees more of the tail than of the head",
        },
        _observe_groups,
        "the training prior is steep (IR 100) and CE learns it: the head classes take most "
        "predictions, so the tail's accuracy lags far behind; closing that gap is what logit "
        "adjustment, LDAM-DRW and AllNC are for.",
        ("What did notebook 03 measure on the minority digits?",),
    ),
)
PREDICTIONS: dict[str, Prediction] = {item.id: item for item in _PREDICTIONS}


def _prediction(exercise_id: str) -> Prediction:
    if exercise_id not in PREDICTIONS:
        raise ValueError(f"no prediction {exercise_id!r}; there are {', '.join(PREDICTIONS)}")
    return PREDICTIONS[exercise_id]


def recorded_prediction(exercise_id: str) -> Any:
    """What the widget of ``exercise_id`` recorded, or ``...`` when nothing was recorded."""
    return _RECORDED.get(exercise_id, ...)


def prediction_text(exercise_id: str) -> str:
    """The prediction as plain text, with how to record it without a widget."""
    item = _prediction(exercise_id)
    lines = [f"Predict ({exercise_id}): {item.prompt}"]
    if item.options is not None:
        lines += [f"  {letter(i)}) {option}" for i, option in enumerate(item.options)]
    record = item.blank.split("#")[0].strip()
    lines.append(
        f"Replace the ... of {record} with your prediction ({item.expects}) and run the cell; "
        "the reveal comes after the result."
    )
    return "\n".join(lines)


def prediction_widget(exercise_id: str):
    """A small control to record a prediction: a Dropdown (multiple choice) or a FloatText
    (a number) and a Record button, in a VBox (ipywidgets 7 and 8)."""
    import ipywidgets as widgets

    item = _prediction(exercise_id)
    if item.options is not None:
        choices = [(f"{letter(i)}) {text}", letter(i)) for i, text in enumerate(item.options)]
        control = widgets.Dropdown(options=[(_CHOOSE, None), *choices], value=None)
    else:
        control = widgets.FloatText(value=0.0, description=item.expects)
    button = widgets.Button(description="Record")
    status = widgets.HTML(value="")

    def on_record(_button) -> None:
        if control.value is None:
            status.value = "Choose an option first."
            return
        _RECORDED[exercise_id] = control.value
        status.value = html.escape(f"Recorded {control.value}; the reveal comes after the result.")

    button.on_click(on_record)
    header = widgets.HTML(value=f"<b>Predict</b> ({exercise_id}): {html.escape(item.prompt)}")
    return widgets.VBox([header, widgets.HBox([control, button]), status])


def predict(exercise_id: str):
    """Show the prediction's widget and return it, or print the text fallback and return None
    (no ipywidgets, or no Jupyter kernel)."""
    if widgets_available():
        return prediction_widget(exercise_id)
    print(prediction_text(exercise_id))
    return None


def reveal(exercise_id: str, prediction: Any = ..., measured: Any = None) -> bool | None:
    """Compare a prediction with the measured value and explain; returns the prediction's
    verdict (True, False, or None when none was made). ``prediction`` defaults to what the
    widget recorded. Never raises on the student's input or the measured value."""
    item = _prediction(exercise_id)
    if is_blank(prediction):
        prediction = recorded_prediction(exercise_id)
    return item.reveal(prediction, measured)
