"""The command line's parser: every option with its own help text, each default shown once.

The training options of ``train`` and ``study`` are generated from ``config.TrainConfig`` and
the AllNC options from ``allnc.AllNCConfig``: their types, bounds, choices, defaults and help
come from those fields, so a setting is defined in one place. Data sets, methods and variants
are listed from their registries (``data.DATASETS``, ``methods.METHODS``,
``methods.VARIANTS``). ``__main__`` runs the commands; this module only describes them.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from ._checks import check_scalar
from .allnc import AllNCConfig
from .checkpoint import CHECKPOINT_NAME
from .config import TrainConfig, field_kind
from .data import DATASETS, PROFILES, SPLITS
from .demo import DEMO, DEMO_METHODS, DEMO_SMOKE
from .filelists import FILELIST_DATASETS
from .methods import ALLNC, METHODS, VARIANTS
from .models import BACKBONES
from .records import HISTORY_FILE, RUN_FILE

COMMANDS = ("train", "evaluate", "bench", "demo", "study", "grade")
#: What "[reconstructed]" after an AllNC option means.
RECONSTRUCTED = (
    "Options marked [reconstructed] are our reading of a choice the AllNC paper does not spell "
    "out (docs/method.md)."
)
#: Training settings a study does not take: it runs its own seeds, in one process.
NOT_IN_STUDY = ("seed", "sync_bn")


class UsageError(Exception):
    """A bad command-line value found after parsing (reported in one line, exit status 2)."""


class Parser(argparse.ArgumentParser):
    """Exits with status 2 and one line on a bad argument (no usage block)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Appends "(default: X)" to an option's help unless X is None, a bool (a switch) or the
    help already gives it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            not action.option_strings
            or default is None
            or default is argparse.SUPPRESS
            or isinstance(default, bool)
            or "(default" in text
        ):
            return text
        return f"{text} (default: %(default)s)"


def number(
    kind: type,
    low: float | None = None,
    high: float | None = None,
    *,
    include_low: bool = True,
    include_high: bool = True,
):
    """An argparse type: a finite number of ``kind`` within bounds (``_checks.check_scalar``)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {kind.__name__}") from None
        try:
            return check_scalar(
                "value",
                value,
                kind=kind,
                low=low,
                high=high,
                include_low=include_low,
                include_high=include_high,
            )
        except (TypeError, ValueError) as err:
            raise argparse.ArgumentTypeError(str(err).removeprefix("value ")) from None

    return parse


def flag(name: str) -> str:
    """``weight_decay`` -> ``--weight-decay``."""
    return "--" + name.replace("_", "-")


def add_settings(group, cls: type, *, exclude: tuple[str, ...] = ()) -> None:
    """One option per command-line field of the settings dataclass ``cls`` (``config.setting``):
    a switch on by default becomes ``--no-NAME``, one off ``--NAME``, one without a default
    ``--NAME/--no-NAME``; a text with choices lists them; a number is checked against its
    bounds. Every option's argparse default is None, so only what the user typed is set."""
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if not meta.get("cli", True) or f.name in exclude:
            continue
        kind, text = field_kind(cls, f.name), meta["help"]
        text += " [reconstructed]" if meta.get("reconstructed") else ""
        if kind is bool:
            if f.default is None:
                group.add_argument(
                    flag(f.name),
                    dest=f.name,
                    default=None,
                    help=text,
                    action=argparse.BooleanOptionalAction,
                )
            elif f.default:
                group.add_argument(
                    f"--no-{f.name.replace('_', '-')}",
                    dest=f.name,
                    action="store_false",
                    default=None,
                    help=f"{text} (on by default; this switches it off)",
                )
            else:
                group.add_argument(
                    flag(f.name), dest=f.name, action="store_true", default=None, help=text
                )
            continue
        shown = "" if f.default is None else f" (default: {f.default})"
        if kind is str:
            group.add_argument(
                flag(f.name),
                dest=f.name,
                choices=meta.get("choices"),
                metavar=None if meta.get("choices") else "NAME",
                help=text.replace("%", "%%") + shown,
            )
        else:
            group.add_argument(
                flag(f.name),
                dest=f.name,
                metavar=kind.__name__.upper(),
                type=number(kind, **meta["bounds"]),
                help=text.replace("%", "%%") + shown,
            )


def given_settings(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The fields of ``cls`` the user gave on the command line."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
            if getattr(args, f.name, None) is not None}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The ``allnc-edu`` argument parser with its subcommands."""
    parser = Parser(
        prog="allnc-edu",
        description="Neural collapse under class imbalance: train AllNC and its baselines, "
        "score saved runs, benchmark the training loop, run the demo, study methods over seeds, "
        "grade an exercise notebook.",
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}"
    )
    _add_train(sub)
    _add_evaluate(sub)
    _add_bench(sub)
    _add_demo(sub)
    _add_study(sub)
    _add_grade(sub)
    return parser


def _add_data(parser: argparse.ArgumentParser) -> None:
    """The options that choose the long-tailed data (train and study)."""
    names = "; ".join(f"{n}: {spec.description}" for n, spec in DATASETS.items())
    parser.add_argument(
        "--dataset",
        choices=tuple(DATASETS),
        default="mnist1d",
        metavar="NAME",
        help=f"the data set ({names})",
    )
    parser.add_argument(
        "--imbalance-ratio",
        type=number(float, 1),
        metavar="RATIO",
        default=100.0,
        help="largest class size over smallest",
    )
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        default="step",
        help="class sizes: step (the second half of the classes small) or exp "
        "(sizes decaying exponentially)",
    )
    parser.add_argument(
        "--n-max",
        type=number(int, 1),
        metavar="N",
        help="size of the largest class (default: 500; CIFAR-10 5000, CIFAR-100 500)",
    )
    parser.add_argument(
        "--split",
        choices=SPLITS,
        default="test",
        help="evaluate on the test set, or on a validation set held out of the "
        "training pool (choose settings there, report on test)",
    )
    parser.add_argument(
        "--data-root",
        metavar="DIR",
        help="the data folder: CIFAR (archive or image folder) or the image "
        "folder of an image-file data set; for MNIST-1D an optional cache",
    )


def _add_train(sub: argparse._SubParsersAction) -> None:
    methods = "\n".join(f"  {name:9s} {spec.help}" for name, spec in METHODS.items())
    train = sub.add_parser(
        "train",
        help="train one method and report accuracy and the neural-collapse (NC) metrics",
        description="Train one method and report accuracy and the neural-collapse (NC) metrics."
        f"\n\nmethods:\n{methods}",
        formatter_class=Formatter,
    )
    _add_data(train)
    train.add_argument(
        "--method",
        choices=tuple(METHODS),
        default=ALLNC.name,
        help="training recipe (listed above)",
    )
    default_nets = ", ".join(f"{s.backbone} for {n}" for n, s in DATASETS.items())
    train.add_argument("--backbone", choices=BACKBONES, help=f"network (default: {default_nets})")
    train.add_argument("--download", action="store_true", help="download CIFAR into --data-root")
    files = train.add_argument_group(f"image-file data sets ({', '.join(FILELIST_DATASETS)})")
    files.add_argument(
        "--split-dir",
        metavar="DIR",
        help="folder of the split lists, e.g. ImageNet_LT_train.txt (default: --data-root)",
    )
    files.add_argument(
        "--image-size",
        type=number(int, 8),
        metavar="PIXELS",
        help="side of the training crops (default: 224)",
    )
    add_settings(train.add_argument_group("training"), TrainConfig)
    run = train.add_argument_group("the run's folder")
    run.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help=f"folder for {CHECKPOINT_NAME}, {RUN_FILE} and {HISTORY_FILE}",
    )
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out (all settings must match it)",
    )
    run.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    run.add_argument(
        "--stop-after",
        type=number(int, 1),
        metavar="EPOCH",
        help="stop after this epoch; --resume later to finish",
    )
    allnc = train.add_argument_group("AllNC options (with --method allnc)", RECONSTRUCTED)
    add_settings(allnc, AllNCConfig)


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    evaluate = sub.add_parser(
        "evaluate",
        help="score a saved run's checkpoint: accuracy and neural-collapse metrics, on one process",
        description="Load the checkpoint of a run written by `train --out DIR`, rebuild its data\n"
        "set and method from the settings it records, and measure on one process what its\n"
        "epochs report: accuracy (overall, many/medium/few shots, minority, per class),\n"
        "training accuracy and the neural-collapse metrics of the training set.",
        formatter_class=Formatter,
    )
    evaluate.add_argument(
        "--run", type=Path, required=True, metavar="DIR", help="folder of the run (train --out DIR)"
    )
    evaluate.add_argument(
        "--split",
        choices=SPLITS,
        help="evaluation set (default: the run's; "
        "MNIST-1D, Gaussian and CIFAR runs can only be scored on their own "
        "split, whose choice shaped their training pool)",
    )
    evaluate.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="also write the scores here, under the names of the run's history.json",
    )
    evaluate.add_argument("--data-root", metavar="DIR", help="the data folder, if it moved")
    evaluate.add_argument("--split-dir", metavar="DIR", help="the split lists' folder, if moved")
    evaluate.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="score with the settings the checkpoint records even where "
        "run.json is missing or disagrees with them (by default such a run is "
        "refused, naming each difference)",
    )
    evaluate.add_argument(
        "--device",
        default="auto",
        metavar="NAME",
        help=TrainConfig.__dataclass_fields__["device"].metadata["help"],
    )


def _add_bench(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser(
        "bench",
        help="training throughput against a reference-style loop",
        formatter_class=Formatter,
    )
    bench.add_argument(
        "--device",
        default="auto",
        metavar="NAME",
        help=TrainConfig.__dataclass_fields__["device"].metadata["help"],
    )
    bench.add_argument(
        "--batch-size", type=number(int, 2), default=128, help="samples per step of both loops"
    )
    bench.add_argument(
        "--images",
        type=number(int, 2),
        help="images per timed pass (default: 1024 on a CPU, 12416 on a GPU)",
    )
    bench.add_argument("--reps", type=number(int, 1), help="timed passes of each loop (default: 5)")
    bench.add_argument(
        "--ref-workers",
        type=number(int, 0),
        help="DataLoader workers of the reference loop (default: 4, as the reference codebases)",
    )
    bench.add_argument(
        "--no-mnist1d",
        dest="mnist1d",
        action="store_false",
        help="skip the MNIST-1D AllNC samples per second",
    )
    bench.add_argument(
        "--no-pipeline",
        dest="pipeline",
        action="store_false",
        help="skip the data-pipeline figure (StreamLoader against a PIL reference loader)",
    )
    bench.add_argument(
        "--pipeline-root",
        metavar="DIR",
        help="JPEG folder for the data-pipeline "
        "figure, DIR/<class>/*.jpg or DIR/train/<class>/*.jpg (default: "
        "synthetic 32x32 JPEGs in a temporary folder)",
    )
    bench.add_argument(
        "--pipeline-images",
        type=number(int, 2),
        help="images per data-pipeline pass (default: 2048)",
    )
    bench.add_argument(
        "--image-size",
        type=number(int, 8),
        metavar="PIXELS",
        default=32,
        help="side of the data pipeline's crops",
    )
    bench.add_argument("--quick", action="store_true", help="a smoke test (seconds)")
    bench.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")


def _add_demo(sub: argparse._SubParsersAction) -> None:
    names = ", ".join(METHODS[m].label for m in DEMO_METHODS)
    demo = sub.add_parser(
        "demo",
        help=f"{names} on long-tailed MNIST-1D, and the unconstrained-features sweeps: "
        "an HTML report (minutes on a CPU)",
        formatter_class=Formatter,
    )
    demo.add_argument(
        "--out",
        type=Path,
        default=Path("runs/demo"),
        metavar="DIR",
        help="folder for report.html and demo.json",
    )
    demo.add_argument(
        "--epochs",
        type=number(int, 1),
        help=f"length of each run (default: {DEMO['epochs']}; {DEMO_SMOKE['epochs']} with --smoke)",
    )
    demo.add_argument("--smoke", action="store_true", help="a tiny run (seconds), for tests")
    demo.add_argument(
        "--seed",
        type=number(int, 0, TrainConfig.__dataclass_fields__["seed"].metadata["bounds"]["high"]),
        default=0,
        help="seed of data and training",
    )
    demo.add_argument("--overwrite", action="store_true", help="replace a demo already in --out")
    demo.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bars"
    )


def _add_study(sub: argparse._SubParsersAction) -> None:
    names = "\n".join(f"  {n:19s} {v.description}" for n, v in VARIANTS.items())
    study = sub.add_parser(
        "study",
        help="train methods x seeds; a mean ± std table and a JSON record",
        description="Train every method x seed on one long-tailed data set, print a mean ± std "
        "table and keep the runs and the summary as JSON, saved as each run finishes: the same "
        f"command continues an interrupted study.\n\nmethods:\n{names}",
        formatter_class=Formatter,
    )
    _add_data(study)
    study.add_argument(
        "--methods",
        default="ce,la,allnc",
        metavar="LIST",
        help="comma-separated methods or variants (listed above)",
    )
    study.add_argument(
        "--seeds",
        default="0,1,2",
        metavar="LIST",
        help="comma-separated seeds, each in [0, 2**32 - 1], none twice",
    )
    study.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a method option for every method that takes it (repeatable)",
    )
    add_settings(
        study.add_argument_group("training (every run)"), TrainConfig, exclude=NOT_IN_STUDY
    )
    kept = study.add_argument_group("what is kept")
    kept.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="write the runs and the "
        "summary here after every finished run; the same command later "
        "continues where it stopped, keeping the runs already there",
    )
    kept.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="keep each run's checkpoint in "
        "DIR/METHOD-seedN, so that an interrupted run continues from its last "
        "epoch",
    )
    kept.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh: replace the study in --json and the runs in --out",
    )


def _add_grade(sub: argparse._SubParsersAction) -> None:
    grade = sub.add_parser(
        "grade",
        help="run a filled-in exercise notebook and print its score",
        description="Run a notebook of the course top to bottom in a fresh kernel and report\n"
        "each exercise and question: correct, not correct (with the check's reason) or not\n"
        "attempted, then the score.",
        formatter_class=Formatter,
    )
    grade.add_argument("notebook", type=Path, metavar="NOTEBOOK", help="the .ipynb to grade")
    grade.add_argument(
        "--timeout",
        type=number(int, 1),
        default=600,
        help="seconds a cell may run before the grade stops",
    )
