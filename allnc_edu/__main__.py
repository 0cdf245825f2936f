"""Command line: ``python -m allnc_edu {train,evaluate,bench,demo,study}`` (also ``allnc-edu``).

    python -m allnc_edu train --dataset mnist1d --imbalance-ratio 100 --method allnc --epochs 3
    torchrun --standalone --nproc-per-node 2 -m allnc_edu train --method allnc --out runs/ddp
    python -m allnc_edu evaluate --run runs/allnc --json scores.json
    python -m allnc_edu bench --json bench.json
    python -m allnc_edu demo
    python -m allnc_edu study --methods ce,la,allnc --seeds 0,1,2 --split validation --json s.json

Bad arguments, and every error the library raises for a user's input (a ValueError or
TypeError: a setting out of range, an unusable --out, a run that cannot be resumed, an unsafe or
broken checkpoint), end with a one-line message on stderr and exit status 2, never a traceback.
A diverged run exits with status 1. Under ``torchrun`` only ``train`` runs (data parallel, one
process per device); rank 0 prints and writes for all.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import distributed, pick_device
from ._checks import SEED_MAX, check_scalar
from .allnc import OPTION_CHOICES, AllNCConfig
from .bench import REFERENCE_WORKERS, run_benchmark
from .checkpoint import CHECKPOINT_NAME, InUseError, OutDirError, check_writable_dir, write_json
from .data import DATASETS, PROFILES, load_dataset
from .demo import DEMO, DEMO_SMOKE, demo
from .experiments import DEFAULT_BACKBONES, evaluate_run, run_method
from .filelists import FILELIST_DATASETS
from .methods import METHODS, VARIANTS
from .models import BACKBONES
from .records import HISTORY_FILE, NC_FIELDS, RUN_FILE, RunResult
from .study import parse_sets, run_study, study_table
from .train import DEFAULTS, DivergenceError, check_out_dir

#: One line per method for ``--help`` (a method without an entry is listed by name).
METHOD_HELP = {
    "ce": "cross-entropy with a learned linear classifier",
    "la": "logit-adjusted cross-entropy (Menon et al. 2021)",
    "ldam-drw": "LDAM loss with deferred re-weighting (Cao et al. 2019)",
    "etf-dr": "a fixed simplex-ETF classifier trained with dot regression (Yang et al. 2022)",
    "allnc": "AllNC: HyCon + P2P + GBBN (a documented reconstruction of Zhang et al. 2024)",
}


class UsageError(Exception):
    """A bad command-line value found after parsing (reported in one line, exit status 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Appends "(default: X)" to an option's help unless X is None or a bool (a switch)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            not action.option_strings
            or default is None
            or default is argparse.SUPPRESS
            or isinstance(default, bool)
            or "%(default)" in text
        ):
            return text
        return f"{text} (default: %(default)s)"


def _number(
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
                "value", value, kind=kind, low=low, high=high,
                include_low=include_low, include_high=include_high,
            )  # fmt: skip
        except (TypeError, ValueError) as err:
            raise argparse.ArgumentTypeError(str(err).removeprefix("value ")) from None

    return parse


def _field_help(cls: type) -> dict[str, str]:
    """``{field: text}`` from the "Attributes:" section of a dataclass's docstring, where an
    entry reads ``name[, name...]: text`` and continues on more indented lines."""
    doc = inspect.getdoc(cls) or ""
    section = doc.partition("Attributes:")[2]
    helps: dict[str, str] = {}
    names: list[str] = []
    for line in section.splitlines():
        entry = re.match(r"^    (\w+(?:, \w+)*): (.*)$", line)
        if entry:
            names = entry.group(1).split(", ")
            helps.update(dict.fromkeys(names, entry.group(2)))
        elif line.startswith("        ") and names:
            helps.update({n: f"{helps[n]} {line.strip()}" for n in names})
    return {k: v.replace("``", "") for k, v in helps.items()}


def _add_allnc_flags(group: argparse._ArgumentGroup) -> None:
    """One flag per ``AllNCConfig`` field: its type, its choices (``OPTION_CHOICES``), its
    docstring help and default. A switch that is on by default becomes ``--no-NAME``."""
    helps = _field_help(AllNCConfig)
    types = typing.get_type_hints(AllNCConfig)
    for field in dataclasses.fields(AllNCConfig):
        name, kind, text = field.name, types[field.name], helps.get(field.name, "")
        flag = "--" + name.replace("_", "-")
        if kind is bool:
            if field.default:
                group.add_argument(
                    f"--no-{name.replace('_', '-')}",
                    dest=name,
                    action="store_false",
                    default=None,
                    help=f"turn off: {text}",
                )
            else:
                group.add_argument(
                    flag, dest=name, action="store_true", default=None, help=f"turn on: {text}"
                )
        elif kind is str:
            group.add_argument(
                flag,
                dest=name,
                choices=OPTION_CHOICES.get(name),
                help=f"{text} (default: {field.default})",
            )
        else:
            group.add_argument(
                flag,
                dest=name,
                type=_number(kind),
                metavar=kind.__name__.upper(),
                help=f"{text} (default: {field.default})",
            )


def build_parser() -> argparse.ArgumentParser:
    """The ``allnc-edu`` argument parser with its subcommands."""
    parser = _Parser(
        prog="allnc-edu",
        description="Neural collapse under class imbalance: train AllNC and "
        "its baselines, benchmark the training loop, run a demo.",
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="{train,evaluate,bench,demo,study}"
    )

    methods = "\n".join(f"  {m:9s} {METHOD_HELP.get(m, '')}" for m in METHODS)
    train = sub.add_parser(
        "train",
        help="train one method and report accuracy and NC metrics",
        description=f"Train one method and report accuracy and NC metrics.\n\nmethods:\n{methods}",
        formatter_class=_Formatter,
    )
    train.add_argument(
        "--dataset",
        choices=DATASETS,
        default="mnist1d",
        metavar="NAME",
        help=f"data set: {', '.join(DATASETS)}",
    )
    train.add_argument(
        "--imbalance-ratio",
        type=_number(float, 1),
        default=100.0,
        help="largest over smallest class size",
    )
    train.add_argument(
        "--profile",
        choices=PROFILES,
        default="step",
        help="class sizes: step (half the classes small) or exp (decaying)",
    )
    train.add_argument(
        "--n-max", type=_number(int, 1), help="head-class size (default: 500; CIFAR-10 5000)"
    )
    train.add_argument(
        "--method", choices=METHODS, default="allnc", help="training recipe (listed above)"
    )
    train.add_argument(
        "--backbone",
        choices=BACKBONES,
        help="network (default: cnn1d for mnist1d, mlp for gaussian, resnet32-ldam for CIFAR)",
    )
    train.add_argument(
        "--epochs", type=_number(int, 1), help="length of the run (default: 200 CIFAR, 20 others)"
    )
    train.add_argument(
        "--batch-size", type=_number(int, 2), help="batch size (default: 64 CIFAR, 128 others)"
    )
    train.add_argument(
        "--lr",
        type=_number(float, 0, include_low=False),
        help="peak learning rate (default: 0.01 CIFAR, 0.1 others)",
    )
    train.add_argument(
        "--momentum",
        type=_number(float, 0, 1, include_high=False),
        default=0.9,
        help="SGD momentum",
    )
    train.add_argument(
        "--weight-decay",
        type=_number(float, 0),
        help="SGD weight decay (default: 5e-3; the image-file data sets' recipe values)",
    )
    train.add_argument(
        "--warmup-epochs",
        type=_number(float, 0),
        default=0.0,
        help="linear learning-rate warm-up before the cosine decay",
    )
    train.add_argument(
        "--metrics-every",
        type=_number(int, 1),
        help="measure accuracy and NC metrics every N epochs (and the last) (default: 10 "
        "CIFAR, 2 MNIST-1D, 1 gaussian: evaluation then takes under 15%% of a run's time)",
    )
    train.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 or mps")
    train.add_argument(
        "--data-root",
        help="CIFAR folder; image folder of imagenet-lt, inat2018, places-lt (MNIST-1D: "
        "optional cache folder)",
    )
    train.add_argument("--download", action="store_true", help="download CIFAR into --data-root")
    files = train.add_argument_group(f"image-file data sets ({', '.join(FILELIST_DATASETS)})")
    files.add_argument(
        "--split-dir",
        help="folder of the split lists, e.g. ImageNet_LT_train.txt (default: --data-root)",
    )
    files.add_argument(
        "--image-size", type=_number(int, 8), help="side of the training crops (default: 224)"
    )
    files.add_argument(
        "--workers",
        type=_number(int, 0),
        help="DataLoader worker processes decoding images (default: cores - 1, at most 8)",
    )
    train.add_argument(
        "--split",
        choices=("test", "validation"),
        default="test",
        help="evaluate on the test set or on a validation set held out of the training pool",
    )
    train.add_argument(
        "--seed",
        type=_number(int, 0, SEED_MAX),
        default=0,
        help="seed of the data subset, the initialisation and the shuffling",
    )
    train.add_argument("--no-amp", dest="amp", action="store_false", help="train in float32")
    _add_augment(train)
    train.add_argument("--compile", action="store_true", help="torch.compile the backbone")
    train.add_argument(
        "--sync-bn",
        action="store_true",
        help="under torchrun: BatchNorm statistics over the global batch (SyncBatchNorm, CUDA)",
    )
    train.add_argument(
        "--out", type=Path, help=f"folder for {CHECKPOINT_NAME}, {RUN_FILE} and {HISTORY_FILE}"
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out (all settings must match it)",
    )
    train.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    train.add_argument(
        "--stop-after",
        type=_number(int, 1),
        metavar="EPOCH",
        help="stop after this epoch; --resume later to finish",
    )
    train.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bar"
    )
    _add_allnc_flags(train.add_argument_group("AllNC options (with --method allnc)"))
    train.set_defaults(func=cmd_train)
    _add_evaluate(sub)

    bench = sub.add_parser(
        "bench",
        help="training throughput against a reference-style loop",
        formatter_class=_Formatter,
    )
    bench.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 or mps")
    bench.add_argument("--batch-size", type=_number(int, 2), default=128, help="batch size")
    bench.add_argument(
        "--images",
        type=_number(int, 2),
        help="images per pass (default: 1024 on a CPU, 12416 on a GPU)",
    )
    bench.add_argument("--reps", type=_number(int, 1), help="timed passes per loop (default: 5)")
    bench.add_argument(
        "--ref-workers", type=_number(int, 0), help="reference DataLoader workers (default: 4)"
    )
    bench.add_argument(
        "--no-mnist1d",
        dest="mnist1d",
        action="store_false",
        help="skip the MNIST-1D AllNC samples/s",
    )
    bench.add_argument(
        "--no-pipeline",
        dest="pipeline",
        action="store_false",
        help="skip the data-pipeline figure (StreamLoader against a PIL reference loader)",
    )
    bench.add_argument(
        "--pipeline-root",
        help="JPEG image folder for the data-pipeline figure, DIR/<class>/*.jpg or "
        "DIR/train/<class>/*.jpg (default: synthetic 32x32 JPEGs in a temporary folder)",
    )
    bench.add_argument(
        "--pipeline-images",
        type=_number(int, 2),
        help="images per data-pipeline pass (default: 2048)",
    )
    bench.add_argument(
        "--image-size", type=_number(int, 8), default=32, help="data-pipeline crop size"
    )
    bench.add_argument("--quick", action="store_true", help="a smoke test (seconds)")
    bench.add_argument("--json", type=Path, help="write the results to this file")
    bench.set_defaults(func=cmd_bench)

    demo = sub.add_parser(
        "demo",
        help="CE vs ETF + DR vs AllNC on long-tailed MNIST-1D, plus the UFM sweep: an "
        "HTML report (minutes on a CPU)",
        formatter_class=_Formatter,
    )
    demo.add_argument(
        "--out", type=Path, default=Path("runs/demo"), help="folder for report.html and demo.json"
    )
    demo.add_argument(
        "--epochs",
        type=_number(int, 1),
        help=f"default {DEMO['epochs']} ({DEMO_SMOKE['epochs']} with --smoke)",
    )
    demo.add_argument("--smoke", action="store_true", help="a tiny run (seconds), for tests")
    demo.add_argument(
        "--seed", type=_number(int, 0, SEED_MAX), default=0, help="seed of data and training"
    )
    demo.add_argument("--overwrite", action="store_true", help="replace a demo already in --out")
    demo.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bar"
    )
    demo.set_defaults(func=cmd_demo)
    _add_study(sub)
    return parser


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    """The ``evaluate`` subcommand: score a saved run's checkpoint again on one process."""
    evaluate = sub.add_parser(
        "evaluate",
        help="score a saved run's checkpoint: accuracy and NC metrics, on one process",
        description="Load the checkpoint and run.json of a run written by `train --out DIR`,\n"
        "rebuild its data set and method, and measure on one process what its epochs\n"
        "report: accuracy (overall, many/medium/few shots, minority, per class), training\n"
        "accuracy and the neural-collapse metrics of the training set. The way to check a\n"
        "distributed run and to score a saved model.",
        formatter_class=_Formatter,
    )
    evaluate.add_argument(
        "--run", type=Path, required=True, metavar="DIR", help="folder of the run (train --out DIR)"
    )
    evaluate.add_argument(
        "--split",
        choices=("test", "validation"),
        help="evaluation set (default: the run's; MNIST-1D, Gaussian and CIFAR runs can only be "
        "scored on their own split, whose choice shaped their training pool)",
    )
    evaluate.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="also write the scores here, under the names of the run's history.json: "
        "accuracy, minority_accuracy, majority_accuracy, many, medium, few, per_class, "
        "train_acc, nc (nc1, mc_weights, mc_means, ...), with run, method, dataset, split, "
        "device and epoch",
    )
    evaluate.add_argument(
        "--data-root", metavar="DIR", help="the data folder, if it moved since training"
    )
    evaluate.add_argument("--split-dir", metavar="DIR", help="the split lists' folder, if moved")
    evaluate.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="score with the settings the checkpoint records even where run.json is missing "
        "or disagrees with them (by default such a run is refused, naming each difference)",
    )
    evaluate.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 or mps")
    evaluate.set_defaults(func=cmd_evaluate)


def _add_augment(parser: argparse.ArgumentParser) -> None:
    """--augment / --no-augment, None (the data set's default) when neither is given."""
    parser.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="augment on the device (images: crop + flip, signals: shift by up to 4); "
        "default: on for images, off for MNIST-1D",
    )


def _add_study(sub: argparse._SubParsersAction) -> None:
    """The ``study`` subcommand: methods x seeds, a mean ± std table and a JSON record."""
    names = "\n".join(f"  {n:19s} {v.description}" for n, v in VARIANTS.items())
    study = sub.add_parser(
        "study",
        help="train methods x seeds; a mean ± std table and a JSON record",
        description="Train every method x seed on one long-tailed data set, print a mean ± std "
        f"table and write the runs and the summary as JSON.\n\nmethods:\n{names}",
        formatter_class=_Formatter,
    )
    study.add_argument(
        "--dataset",
        choices=DATASETS,
        default="mnist1d",
        metavar="NAME",
        help=f"data set: {', '.join(DATASETS)}",
    )
    study.add_argument("--profile", choices=PROFILES, default="step", help="class sizes")
    study.add_argument(
        "--imbalance-ratio", type=_number(float, 1), default=100.0, help="largest over smallest"
    )
    study.add_argument("--n-max", type=_number(int, 1), help="head-class size (default: 500)")
    study.add_argument(
        "--methods", default="ce,la,allnc", help="comma-separated methods or variants (above)"
    )
    study.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    study.add_argument("--epochs", type=_number(int, 1), default=60, help="epochs of every run")
    study.add_argument(
        "--split",
        choices=("test", "validation"),
        default="test",
        help="evaluate on the test set or on a validation set held out of the training pool",
    )
    study.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a method option for every method that takes it (repeatable)",
    )
    study.add_argument("--weight-decay", type=_number(float, 0), default=5e-3, help="SGD")
    study.add_argument("--batch-size", type=_number(int, 2), help="default: per data set")
    study.add_argument("--lr", type=_number(float, 0, include_low=False), help="peak rate")
    study.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 or mps")
    study.add_argument("--data-root", help="CIFAR folder (MNIST-1D: optional cache folder)")
    study.add_argument("--no-amp", dest="amp", action="store_false", help="train in float32")
    _add_augment(study)
    study.add_argument(
        "--json",
        type=Path,
        help="write the runs and the summary here, after every finished run; the same command "
        "later continues where it stopped, keeping the runs already there",
    )
    study.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="keep each run's checkpoint in DIR/METHOD-seedN, so that an interrupted run "
        "continues from its last epoch",
    )
    study.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh: replace the study in --json and the runs in --out",
    )
    study.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bars"
    )
    study.set_defaults(func=cmd_study)


def _allnc_options(args: argparse.Namespace) -> dict[str, Any]:
    names = [f.name for f in dataclasses.fields(AllNCConfig)]
    options = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    if options and args.method != "allnc":
        flags = ", ".join(
            f"--no-{n.replace('_', '-')}" if v is False else "--" + n.replace("_", "-")
            for n, v in options.items()
        )
        raise UsageError(f"{flags}: AllNC options, only for --method allnc, not {args.method}")
    return options


def _check_device(device: str) -> None:
    try:
        pick_device(device)
    except (ValueError, RuntimeError) as err:
        raise UsageError(f"--device {device}: {err}") from None


def _fmt(value: float | None, pct: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f}%" if pct else f"{value:.3f}"


def summary(result: RunResult) -> str:
    """A one-screen text summary of a finished (or stopped) run."""
    cfg, counts = result.config, result.counts
    groups = {"overall": "accuracy", "many": "many", "medium": "medium", "few": "few",
              "minority": "minority_accuracy"}  # fmt: skip
    accuracies = "   ".join(f"{w} {_fmt(getattr(result, g), pct=True)}" for w, g in groups.items())
    lines = [
        f"{result.method} on {cfg.dataset} (imbalance ratio {cfg.imbalance_ratio:g},"
        f" {cfg.profile}, counts {counts[0]}..{counts[-1]}), "
        f"{result.epochs}/{cfg.epochs} epochs on {cfg.device}, {result.train_s:.1f} s training",
        f"{cfg.split} accuracy   {accuracies}",
        f"train accuracy  {_fmt(result.train_acc, pct=True)}   final loss {_fmt(result.loss)}",
        "neural collapse on the training set (ETF: NC2 distances 0, MC = "
        f"{-1 / (result.num_classes - 1):.3f}; total minority collapse: MC = 1)",
        f"  NC1 {_fmt(result.nc1)}   NC2 ETF distance means {_fmt(result.etf_distance_means)}"
        f" / classifier {_fmt(result.etf_distance_weights)}",
        f"  NC3 self-duality {_fmt(result.self_duality)}   NC4 NCC agreement "
        f"{_fmt(result.ncc_agreement)}",
        f"  minority collapse ({len(result.minority)} classes)   "
        f"MC_W {_fmt(result.mc_weights)}   MC_H {_fmt(result.mc_means)}",
    ]
    return "\n".join(lines)


def _file_options(args: argparse.Namespace) -> dict[str, Any]:
    """``load_dataset`` options of the image-file data sets; refused for the others."""
    given = [f"--{n.replace('_', '-')}" for n in ("split_dir", "image_size", "workers")
             if getattr(args, n) is not None]  # fmt: skip
    if args.dataset not in FILELIST_DATASETS:
        if given:
            raise UsageError(
                f"{', '.join(given)}: only for {', '.join(FILELIST_DATASETS)}, not {args.dataset}"
            )
        return {}
    if args.data_root is None:
        raise UsageError(f"--dataset {args.dataset} needs --data-root DIR, the image folder")
    size = 224 if args.image_size is None else args.image_size
    return {"split_dir": args.split_dir, "image_size": size}


def _weight_decay(args: argparse.Namespace) -> float:
    """--weight-decay, else the data set's recipe value (``train.DEFAULTS``), else 5e-3."""
    if args.weight_decay is not None:
        return args.weight_decay
    return DEFAULTS.get(args.dataset, {}).get("weight_decay", 5e-3)


def _listed(items: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def cmd_train(args: argparse.Namespace) -> int:
    options = _allnc_options(args)
    _check_device(args.device)
    if args.resume and args.out is None:
        raise UsageError("--resume needs --out DIR, the folder of the run to continue")
    if args.dataset.startswith("cifar") and args.data_root is None:
        raise UsageError(f"--dataset {args.dataset} needs --data-root DIR (and --download)")
    file_options = _file_options(args)
    device = distributed.init_from_env(args.device)  # joins torchrun's group, if any
    if args.out is not None:  # before loading data or training anything
        try:
            distributed.main_first(
                lambda: check_out_dir(args.out, resume=args.resume, overwrite=args.overwrite)
            )
        except (OutDirError, InUseError) as err:
            raise UsageError(f"--out: {err}") from None

    def load():
        return load_dataset(
            args.dataset,
            imbalance_ratio=args.imbalance_ratio,
            profile=args.profile,
            root=args.data_root,
            download=args.download,
            seed=args.seed,
            n_max=args.n_max,
            split=args.split,
            **file_options,
        )

    try:  # rank 0 first: it may download or cache the data the others then read
        data = distributed.main_first(load)
        data = data if data is not None else load()
    except OSError as err:  # e.g. no network for --download, an unreadable --data-root
        raise UsageError(f"could not load {args.dataset}: {err}") from None
    try:
        result = run_method(
            args.method,
            data,
            epochs=args.epochs or int(DEFAULTS[args.dataset]["epochs"]),
            backbone=args.backbone or DEFAULT_BACKBONES[args.dataset],
            seed=args.seed,
            batch_size=args.batch_size,
            lr=args.lr,
            momentum=args.momentum,
            weight_decay=_weight_decay(args),
            warmup_epochs=args.warmup_epochs,
            device=device,
            amp=args.amp,
            augment=args.augment,
            compile=args.compile,
            sync_bn=args.sync_bn,
            metrics_every=args.metrics_every,
            out_dir=args.out,
            resume=args.resume,
            overwrite=args.overwrite,
            stop_after=args.stop_after,
            progress=args.progress,
            workers=args.workers,
            **options,
        )
    except DivergenceError as err:
        if distributed.is_main():
            print(f"allnc-edu train: {err}", file=sys.stderr)
        return 1
    if not distributed.is_main():  # rank 0 reports for all
        return 0
    print(summary(result))
    if args.out is not None and result.written:
        print(f"wrote {_listed([str(p) for p in result.written])}")
    elif args.out is not None:
        print(f"nothing to write: {args.out} already holds this run, and its files agree")
    if not result.complete:
        print(f"stopped after epoch {result.epochs}: finish with the same command and --resume")
    return 0


#: Classes up to which ``evaluate`` prints every class's accuracy (beyond: the extremes).
PER_CLASS_SHOWN = 20


def _per_class(accuracies: list[float | None]) -> str:
    """Every class's accuracy, or for many classes the lowest, median and highest."""
    if len(accuracies) <= PER_CLASS_SHOWN:
        return "   ".join(f"{k}: {_fmt(a, pct=True)}" for k, a in enumerate(accuracies))
    known = sorted((a, k) for k, a in enumerate(accuracies) if a is not None)
    if not known:
        return f"{len(accuracies)} classes, none in the evaluation set"
    (low, k_low), (high, k_high) = known[0], known[-1]
    median = known[len(known) // 2][0]
    return (
        f"{len(accuracies)} classes: lowest {_fmt(low, pct=True)} (class {k_low}), median "
        f"{_fmt(median, pct=True)}, highest {_fmt(high, pct=True)} (class {k_high}); "
        "all of them with --json"
    )


def evaluation_table(scores: dict[str, Any]) -> str:
    """The scores of :func:`experiments.evaluate_run` as a few readable lines."""
    groups = ("accuracy", "many", "medium", "few", "minority_accuracy", "majority_accuracy")
    words = ("overall", "many", "medium", "few", "minority", "majority")
    shown = [_fmt(scores[g], pct=True) for g in groups]
    nc = scores["nc"] or {}
    lines = [
        f"{scores['method']} on {scores['dataset']} ({scores['split']} split), checkpoint of "
        f"epoch {scores['epoch']} in {scores['run']}, evaluated on {scores['device']}",
        f"{scores['split']} accuracy   "
        + "   ".join(f"{name} {value}" for name, value in zip(words, shown, strict=True)),
        f"train accuracy  {_fmt(scores['train_acc'], pct=True)}",
        f"per class       {_per_class(scores['per_class'])}",
        "neural collapse on the training set",
    ]
    names = [n for n in NC_FIELDS if n in nc]
    for i in range(0, len(names), 3):
        lines.append("  " + "   ".join(f"{n} {_fmt(nc[n])}" for n in names[i : i + 3]))
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    _single_process("evaluate")
    _check_device(args.device)
    if args.json is not None:  # before the evaluation runs
        if args.json.is_dir():
            raise UsageError(f"--json {args.json} is a folder; give a file name")
        check_writable_dir(args.json.parent)
    try:
        scores = evaluate_run(
            args.run,
            split=args.split,
            root=args.data_root,
            split_dir=args.split_dir,
            device=args.device,
            trust_checkpoint=args.trust_checkpoint,
        )
    except OSError as err:  # e.g. an unreadable data folder
        raise UsageError(f"could not load the run's data: {err} (pass --data-root)") from None
    print(evaluation_table(scores))
    if args.json is not None:
        write_json(args.json, scores)
        print(f"wrote {args.json}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    _check_device(args.device)
    if args.json is not None:  # before the benchmark runs
        if args.json.is_dir():
            raise UsageError(f"--json {args.json} is a folder; give a file name")
        check_writable_dir(args.json.parent)
    result = run_benchmark(
        device=args.device,
        batch_size=args.batch_size,
        images=args.images,
        reps=args.reps,
        ref_workers=REFERENCE_WORKERS if args.ref_workers is None else args.ref_workers,
        quick=args.quick,
        mnist1d=args.mnist1d,
        pipeline=args.pipeline,
        pipeline_root=args.pipeline_root,
        pipeline_images=args.pipeline_images,
        image_size=args.image_size,
    )
    if args.json is not None:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0


def _single_process(command: str) -> None:
    """Refuse ``command`` under torchrun with several processes (only train is data parallel)."""
    if distributed.env_world_size() > 1:
        raise UsageError(
            f"{command} runs in one process; launch it with python -m allnc_edu, not torchrun "
            "(only train is data parallel)"
        )


def cmd_demo(args: argparse.Namespace) -> int:
    _single_process("demo")
    demo(
        args.out,
        epochs=args.epochs,
        smoke=args.smoke,
        seed=args.seed,
        progress=args.progress,
        overwrite=args.overwrite,
    )
    return 0


def _study_command(args: argparse.Namespace) -> str:
    """The command line that reproduces ``args`` (every setting spelled out)."""
    parts = ["python -m allnc_edu study"]
    for name in ("dataset", "profile", "imbalance_ratio", "n_max", "methods", "seeds", "epochs",
                 "split", "weight_decay", "batch_size", "lr", "device", "data_root"):  # fmt: skip
        value = getattr(args, name)
        if value is not None:
            parts.append(f"--{name.replace('_', '-')} {value}")
    parts += [f"--set {item}" for item in args.sets]
    parts += [] if args.amp else ["--no-amp"]
    if args.augment is not None:
        parts.append("--augment" if args.augment else "--no-augment")
    parts += [f"--{name} {getattr(args, name)}" for name in ("json", "out")
              if getattr(args, name) is not None]  # fmt: skip
    return " ".join(parts)


def cmd_study(args: argparse.Namespace) -> int:
    _single_process("study")
    _check_device(args.device)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise UsageError(f"--seeds must be comma-separated integers, got {args.seeds!r}") from None
    study = run_study(
        dataset=args.dataset,
        profile=args.profile,
        imbalance_ratio=args.imbalance_ratio,
        methods=[m.strip() for m in args.methods.split(",") if m.strip()],
        seeds=seeds,
        epochs=args.epochs,
        split=args.split,
        n_max=args.n_max,
        root=args.data_root,
        sets=parse_sets(args.sets),
        command=_study_command(args),
        json_path=args.json,
        runs_dir=args.out,
        overwrite=args.overwrite,
        weight_decay=args.weight_decay,
        batch_size=args.batch_size,
        lr=args.lr,
        device=args.device,
        amp=args.amp,
        augment=args.augment,
        progress=args.progress,
    )
    print(study_table(study["summary"]))
    if args.json is not None:
        print(f"wrote {args.json}")
    return 0


def _flags_by_dest(parser: argparse.ArgumentParser, command: str) -> dict[str, str]:
    """``{dest: "--flag"}`` of ``command``'s options (a switch's dest maps to its flag)."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {
        action.dest: action.option_strings[0]
        for action in sub.choices[command]._actions
        if action.option_strings
    }


#: The library's argument names for paths, and the options that give them on the command line.
_PATH_OPTIONS = {"out_dir": "out", "runs_dir": "out", "json_path": "json"}


def cli_spelling(message: str, flags: dict[str, str]) -> str:
    """A library message as a command-line user reads it: ``name=True`` becomes the flag
    (``resume=True`` -> ``--resume``), a message opening with a setting's name opens with its
    flag (``weight_decay must be`` -> ``--weight-decay must be``), path arguments become their
    options (``out_dir`` -> ``--out``) and "the same call" "the same command"."""
    flags = {**flags, **{k: flags[v] for k, v in _PATH_OPTIONS.items() if v in flags}}

    def switch(match: re.Match) -> str:
        return flags.get(match.group(1), match.group(0))

    def on(match: re.Match) -> str:  # another command's switch: its flag all the same
        return flags.get(match.group(1), "--" + match.group(1).replace("_", "-"))

    message = re.sub(r"\b(\w+)=True\b", on, message)
    message = re.sub(rf"\b({'|'.join(_PATH_OPTIONS)})\b", switch, message)
    message = message.replace("the same call", "the same command")
    return re.sub(r"^(\w+)(?= must be)", switch, message)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m allnc_edu`` and the ``allnc-edu`` script; returns the exit
    status (2 for bad arguments or settings, 1 for a diverged run)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except distributed.RankZeroError:  # rank 0 reports the error
        return 2
    except KeyboardInterrupt as err:  # Ctrl-C, or torchrun stopping this process: one line
        line = cli_spelling(str(err) or "interrupted", _flags_by_dest(parser, args.command))
        who = f"rank {distributed.rank()}: " if distributed.world_size() > 1 else ""
        print(f"allnc-edu {args.command}: {who}{line}", file=sys.stderr)
        return getattr(err, "exit_status", 130)
    except (UsageError, ValueError, TypeError) as err:
        lines = str(err).strip().splitlines() or [type(err).__name__]
        line = cli_spelling(lines[0], _flags_by_dest(parser, args.command))
        shown = distributed.is_main()  # under torchrun, rank 0 speaks for all
        parser.exit(2, f"allnc-edu {args.command}: error: {line}\n" if shown else None)
    finally:
        distributed.teardown()


if __name__ == "__main__":
    sys.exit(main())
