"""Command line: ``python -m allnc_edu {train,bench,demo}`` (also installed as ``allnc-edu``).

    python -m allnc_edu train --dataset mnist1d --imbalance-ratio 100 --method allnc --epochs 3
    python -m allnc_edu bench --json bench.json
    python -m allnc_edu demo

Bad arguments end with a one-line message and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import pick_device
from .data import DATASETS
from .methods import METHODS
from .models import BACKBONES

DEFAULT_BACKBONE = {
    "mnist1d": "cnn1d",
    "gaussian": "mlp",
    "cifar10-lt": "resnet32-ldam",
    "cifar100-lt": "resnet32-ldam",
}


#: Methods the demo compares, and its settings (full, and ``--smoke``: seconds, for tests).
DEMO_METHODS = ("ce", "etf-dr", "allnc")
DEMO = {"epochs": 60, "n_max": 500, "imbalance_ratio": 100.0, "metrics_every": 2,
        "ufm_ratios": [1, 3, 10, 30, 100, 300, 1000], "ufm_steps": 4000}  # fmt: skip
DEMO_SMOKE = {"epochs": 2, "n_max": 200, "imbalance_ratio": 100.0, "metrics_every": 1,
              "ufm_ratios": [1, 1000], "ufm_steps": 300}  # fmt: skip


class UsageError(Exception):
    """A bad command-line value found after parsing (reported in one line, exit status 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _number(kind: type, low: float, *, strict: bool = False):
    """An argparse type: a number ``kind`` that is >= ``low`` (> ``low`` when ``strict``)."""
    rule = f"{'>' if strict else '>='} {low}"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {kind.__name__}") from None
        if not (value > low if strict else value >= low):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The ``allnc-edu`` argument parser with its three subcommands."""
    parser = _Parser(
        prog="allnc-edu",
        description="Neural collapse under class imbalance: train AllNC and "
        "its baselines, benchmark the training loop, run a demo.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,bench,demo}")

    train = sub.add_parser("train", help="train one method and report accuracy and NC metrics")
    train.add_argument("--dataset", choices=DATASETS, default="mnist1d")
    train.add_argument("--imbalance-ratio", type=_number(float, 1), default=100.0)
    train.add_argument("--profile", choices=("exp", "step"), default="exp")
    train.add_argument("--n-max", type=_number(int, 1), help="head-class size")
    train.add_argument("--method", choices=METHODS, default="allnc")
    train.add_argument("--backbone", choices=BACKBONES, help="default: per dataset")
    train.add_argument("--epochs", type=_number(int, 1), help="default: 200 CIFAR, 20 others")
    train.add_argument("--batch-size", type=_number(int, 2))
    train.add_argument("--lr", type=_number(float, 0, strict=True), help="default: per dataset")
    train.add_argument("--momentum", type=float, default=0.9)
    train.add_argument("--weight-decay", type=_number(float, 0), default=5e-3)
    train.add_argument("--warmup-epochs", type=_number(float, 0), default=0.0)
    train.add_argument("--metrics-every", type=_number(int, 1), default=1)
    train.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    train.add_argument("--data-root", help="CIFAR folder (MNIST-1D: optional cache folder)")
    train.add_argument("--download", action="store_true", help="download CIFAR into --data-root")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--no-amp", dest="amp", action="store_false", help="train in float32")
    train.add_argument("--compile", action="store_true", help="torch.compile the backbone")
    train.add_argument("--out", type=Path, help="write history.json, report.json, checkpoint")
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.add_argument("--no-progress", dest="progress", action="store_false")
    allnc = train.add_argument_group("AllNC switches (with --method allnc)")
    for part in ("hycon", "p2p", "gbbn"):
        allnc.add_argument(f"--no-{part}", dest=part, action="store_false", default=None)
    allnc.add_argument("--lambda-h", type=_number(float, 0))
    allnc.add_argument("--lambda-p", type=_number(float, 0))
    allnc.add_argument("--tau", type=_number(float, 0, strict=True), help="HyCon temperature")
    allnc.add_argument("--gamma", type=_number(float, 0, strict=True), help="GBBN exponent")
    allnc.add_argument("--p2p-mode", choices=("cross", "separate", "both"))
    allnc.add_argument("--rebalance-loss", choices=("ce", "la"))
    allnc.add_argument("--inference", choices=("rebalancing", "average"))
    train.set_defaults(func=cmd_train)

    bench = sub.add_parser("bench", help="training throughput against a reference-style loop")
    bench.add_argument("--device", default="auto")
    bench.add_argument("--batch-size", type=_number(int, 2), default=128)
    bench.add_argument("--images", type=_number(int, 2), help="images per pass")
    bench.add_argument("--reps", type=_number(int, 1), help="timed passes per loop")
    bench.add_argument(
        "--ref-workers", type=_number(int, 0), help="reference DataLoader workers (default 4)"
    )
    bench.add_argument(
        "--no-mnist1d", dest="mnist1d", action="store_false", help="skip MNIST-1D AllNC samples/s"
    )
    bench.add_argument("--quick", action="store_true", help="a smoke test (seconds)")
    bench.add_argument("--json", type=Path, help="write the results here")
    bench.set_defaults(func=cmd_bench)

    demo = sub.add_parser(
        "demo", help="CE vs ETF + DR vs AllNC on long-tailed MNIST-1D, plus the UFM sweep: an "
        "HTML report (minutes on a CPU)",
    )  # fmt: skip
    demo.add_argument(
        "--out", type=Path, default=Path("runs/demo"), help="write report.html and report.json here"
    )
    demo.add_argument(
        "--epochs", type=_number(int, 1), help=f"default {DEMO['epochs']} ({DEMO_SMOKE['epochs']} "
        "with --smoke)",
    )  # fmt: skip
    demo.add_argument("--smoke", action="store_true", help="a tiny run (seconds), for tests")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--no-progress", dest="progress", action="store_false")
    demo.set_defaults(func=cmd_demo)
    return parser


def _allnc_options(args: argparse.Namespace) -> dict[str, Any]:
    names = ("hycon", "p2p", "gbbn", "lambda_h", "lambda_p", "tau", "gamma", "p2p_mode",
             "rebalance_loss", "inference")  # fmt: skip
    options = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    if options and args.method != "allnc":
        flags = ", ".join(
            f"--no-{n}" if isinstance(v, bool) else "--" + n.replace("_", "-")
            for n, v in options.items()
        )
        raise UsageError(f"{flags}: AllNC switches, only for --method allnc, not {args.method}")
    return options


def _check_device(device: str) -> None:
    try:
        pick_device(device)
    except (ValueError, RuntimeError) as err:
        raise UsageError(f"--device {device}: {err}") from None


def build_run(args: argparse.Namespace):
    """Load the data set and build the method that ``args`` describe (seeded)."""
    from .data import load_dataset
    from .methods import make_method
    from .models import build_backbone
    from .train import seed_everything

    options = _allnc_options(args)
    _check_device(args.device)
    if args.dataset.startswith("cifar") and args.data_root is None:
        raise UsageError(f"--dataset {args.dataset} needs --data-root DIR (and --download)")
    try:
        data = load_dataset(
            args.dataset,
            imbalance_ratio=args.imbalance_ratio,
            profile=args.profile,
            root=args.data_root,
            download=args.download,
            seed=args.seed,
            n_max=args.n_max,
        )
        seed_everything(args.seed)
        backbone = build_backbone(args.backbone or DEFAULT_BACKBONE[args.dataset], data.input_shape)
        method = make_method(args.method, backbone, data.num_classes, data.counts, **options)
    except ValueError as err:
        raise UsageError(str(err)) from None
    except OSError as err:  # e.g. no network for --download, an unreadable --data-root
        raise UsageError(f"could not load {args.dataset}: {err}") from None
    return data, method


def _fmt(value: float | None, pct: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f}%" if pct else f"{value:.3f}"


def summary(report: dict[str, Any]) -> str:
    """A one-screen text summary of a ``fit`` report."""
    cfg, test, nc = report["config"], report["test"], report["nc"] or {}
    lines = [
        f"{report['method']} on {report['dataset']} (imbalance ratio {report['imbalance_ratio']:g},"
        f" {report['profile']}, counts {report['counts'][0]}..{report['counts'][-1]}), "
        f"{report['epochs_done']}/{cfg['epochs']} epochs on {cfg['device']}, "
        f"{report['train_s']:.1f} s training",
        "test accuracy   overall {}   many {}   medium {}   few {}".format(
            *(_fmt(test[g], pct=True) for g in ("overall", "many", "medium", "few"))
        ),
        f"train accuracy  {_fmt(report['train_acc'], pct=True)}   final loss "
        f"{_fmt(report['loss'])}",
        "neural collapse on the training set (ETF: NC2 distances 0, MC = "
        f"{-1 / (report['num_classes'] - 1):.3f}; total minority collapse: MC = 1)",
        f"  NC1 {_fmt(nc.get('nc1'))}   NC2 ETF distance means {_fmt(nc.get('etf_distance_means'))}"
        f" / classifier {_fmt(nc.get('etf_distance_weights'))}",
        f"  NC3 self-duality {_fmt(nc.get('self_duality'))}   NC4 NCC agreement "
        f"{_fmt(nc.get('ncc_agreement'))}",
        f"  minority collapse ({len(report['minority'])} classes)   "
        f"MC_W {_fmt(nc.get('mc_weights'))}   MC_H {_fmt(nc.get('mc_means'))}",
    ]
    return "\n".join(lines)


def cmd_train(args: argparse.Namespace) -> int:
    from .train import DEFAULTS, DivergenceError, fit

    data, method = build_run(args)
    try:
        result = fit(
            method,
            data,
            epochs=args.epochs or int(DEFAULTS[args.dataset]["epochs"]),
            batch_size=args.batch_size,
            lr=args.lr,
            momentum=args.momentum,
            weight_decay=args.weight_decay,
            warmup_epochs=args.warmup_epochs,
            device=args.device,
            amp=args.amp,
            compile=args.compile,
            seed=args.seed,
            metrics_every=args.metrics_every,
            out_dir=args.out,
            resume=args.resume,
            progress=args.progress,
        )
    except DivergenceError as err:
        print(f"allnc-edu train: {err}", file=sys.stderr)
        return 1
    print(summary(result.report))
    if args.out is not None:
        print(f"wrote {args.out / 'history.json'} and {args.out / 'report.json'}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import REFERENCE_WORKERS, run_benchmark
    from .checkpoint import write_json

    _check_device(args.device)
    result = run_benchmark(
        device=args.device,
        batch_size=args.batch_size,
        images=args.images,
        reps=args.reps,
        ref_workers=REFERENCE_WORKERS if args.ref_workers is None else args.ref_workers,
        quick=args.quick,
        mnist1d=args.mnist1d,
    )
    if args.json is not None:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0


def demo(
    out_dir: str | Path = "runs/demo",
    *,
    epochs: int | None = None,
    smoke: bool = False,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """The main job: CE, a fixed ETF classifier with dot regression and AllNC on long-tailed
    MNIST-1D (step profile, imbalance ratio 100), plus the UFM imbalance sweeps with a learned
    and a fixed ETF classifier; writes ``out_dir/report.html`` and ``out_dir/report.json``.

    Settings are ``DEMO`` (``DEMO_SMOKE`` with ``smoke=True``: seconds, for tests); ``epochs``
    overrides theirs. Runs on the CPU. Prints the results table and the findings; returns the
    numbers written to report.json (``report.report_numbers``).
    """
    import time

    from .data import load_dataset
    from .experiments import compare_methods, table_rows
    from .report import label, write_report
    from .ufm import imbalance_sweep

    settings = {**(DEMO_SMOKE if smoke else DEMO)}
    if epochs is not None:
        settings["epochs"] = epochs
    start = time.perf_counter()
    data = load_dataset(
        "mnist1d",
        imbalance_ratio=settings["imbalance_ratio"],
        profile="step",
        n_max=settings["n_max"],
        seed=seed,
    )
    print(
        f"demo: {', '.join(label(m) for m in DEMO_METHODS)} on long-tailed mnist1d (step profile,"
        f" imbalance ratio {settings['imbalance_ratio']:g}, counts {data.counts}), "
        f"{settings['epochs']} epochs on the CPU; then the UFM sweeps"
    )
    summaries = compare_methods(
        {name: {"method": name} for name in DEMO_METHODS},
        data,
        epochs=settings["epochs"],
        seed=seed,
        device="cpu",
        metrics_every=settings["metrics_every"],
        record_geometry=True,
        progress=progress,
    )
    sweep = {"ratios": settings["ufm_ratios"], "steps": settings["ufm_steps"], "seed": seed}
    sweeps = {
        "cross-entropy, learned classifier": imbalance_sweep(
            sweep["ratios"], steps=sweep["steps"], seed=seed
        ),
        "fixed ETF classifier": imbalance_sweep(
            sweep["ratios"], steps=sweep["steps"], seed=seed, classifier="etf"
        ),
    }
    config = {
        "data set": f"MNIST-1D, step profile, imbalance ratio {settings['imbalance_ratio']:g}",
        "training counts per class": data.counts,
        "test samples": len(data.test_y),
        "backbone": "cnn1d",
        "epochs": settings["epochs"],
        "seed": seed,
        "device": "cpu",
        "UFM sweep imbalance ratios (4 classes, step profile)": settings["ufm_ratios"],
        "smoke run": smoke,
        "wall time (s)": round(time.perf_counter() - start, 1),
    }
    html_path, json_path = write_report(out_dir, summaries, sweeps, config=config)
    rows = table_rows({label(name): s for name, s in summaries.items()})
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
    numbers = json.loads(json_path.read_text(encoding="utf-8"))
    for sentence in numbers["findings"]:
        print("-", sentence)
    print(f"wrote {html_path} (open it in a browser) and {json_path}")
    return numbers


def cmd_demo(args: argparse.Namespace) -> int:
    demo(args.out, epochs=args.epochs, smoke=args.smoke, seed=args.seed, progress=args.progress)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m allnc_edu`` and the ``allnc-edu`` script; returns the exit
    status (2 for bad arguments, 1 for a diverged run)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as err:
        parser.exit(2, f"allnc-edu {args.command}: error: {err}\n")


if __name__ == "__main__":
    sys.exit(main())
