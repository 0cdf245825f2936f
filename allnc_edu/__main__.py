"""Command line: ``python -m allnc_edu {train,evaluate,bench,demo,study,grade}`` (also
``allnc-edu``); the options are described in ``cli``.

    python -m allnc_edu train --dataset mnist1d --imbalance-ratio 100 --method allnc --epochs 3
    torchrun --standalone --nproc-per-node 2 -m allnc_edu train --method allnc --out runs/ddp
    python -m allnc_edu evaluate --run runs/allnc --json scores.json
    python -m allnc_edu bench --json bench.json
    python -m allnc_edu demo
    python -m allnc_edu study --methods ce,la,allnc --seeds 0,1,2 --split validation --json s.json
    python -m allnc_edu grade notebooks/01_neural_collapse.ipynb

Bad arguments, and every error the library raises for a user's input (a ValueError or
TypeError: a setting out of range, an unusable path, a run that cannot be resumed, an unsafe or
broken file), end with one line on stderr and exit status 2, in the command line's spelling
(``--resume``, not ``resume=True``), never a traceback. Every output path is checked before
any work. Ctrl-C ends with one line saying what was kept and exit status 130; a diverged run
exits with status 1. Under ``torchrun`` only ``train`` runs (one process per device); rank 0
prints and writes for all.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from . import distributed, pick_device
from .allnc import AllNCConfig
from .bench import REFERENCE_WORKERS, run_benchmark
from .checkpoint import InUseError, OutDirError, check_writable_dir, shown_path, write_json
from .cli import NOT_IN_STUDY, UsageError, build_parser, flag, given_settings
from .config import TrainConfig
from .data import DATASETS, load_dataset
from .demo import check_demo_out, demo
from .experiments import evaluate_run, run_config, run_method
from .filelists import FILELIST_DATASETS
from .grading import format_grade, grade
from .measures import METRICS
from .methods import ALLNC
from .records import EpochRecord, RunConfig, RunResult
from .rundir import check_out_dir
from .study import parse_sets, run_study, study_table
from .train import DivergenceError

#: Classes up to which a report prints every class's accuracy (beyond: the extremes).
PER_CLASS_SHOWN = 20
#: The metrics a report prints, three to a line.
REPORTED = ("nc1", "etf_distance_means", "etf_distance_weights", "self_duality",
            "ncc_agreement", "equinorm_means", "mc_weights", "mc_means")  # fmt: skip


def _check_device(device: str | None) -> None:
    try:
        pick_device(device or "auto")
    except (ValueError, RuntimeError) as err:
        raise UsageError(f"--device {device}: {err}") from None


def _check_file(path: Path | None, option: str) -> None:
    """An output file named by ``option``: not a folder, in a folder that can be written."""
    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"{option} {shown_path(path)} is a folder; give a file name")
    try:
        check_writable_dir(path.parent)
    except OutDirError as err:
        shown = shown_path(path)
        raise UsageError(f"{option} {shown}: its folder cannot hold it ({err})") from None


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _per_class(accuracies: list[float | None]) -> str:
    """Every class's accuracy, or for many classes the lowest, median and highest."""
    if len(accuracies) <= PER_CLASS_SHOWN:
        return "   ".join(f"{k}: {_pct(a)}" for k, a in enumerate(accuracies))
    known = sorted((a, k) for k, a in enumerate(accuracies) if a is not None)
    if not known:
        return f"{len(accuracies)} classes, none in the evaluation set"
    (low, k_low), (high, k_high) = known[0], known[-1]
    return (
        f"{len(accuracies)} classes: lowest {_pct(low)} (class {k_low}), median "
        f"{_pct(known[len(known) // 2][0])}, highest {_pct(high)} (class {k_high}); "
        "all of them with --json"
    )


def scores_text(record: EpochRecord, split: str, head: str, *, per_class: bool = False) -> str:
    """A run's or an evaluation's numbers as a few readable lines under ``head``: accuracy by
    group, training accuracy (and the loss of a trained epoch), optionally every class, and the
    ``REPORTED`` metrics of the training set with their labels and ETF values."""
    groups = {"overall": record.accuracy, "many": record.many, "medium": record.medium,
              "few": record.few, "minority": record.minority_accuracy,
              "majority": record.majority_accuracy}  # fmt: skip
    train = f"train accuracy  {_pct(record.train_acc)}"
    train += "" if record.loss is None else f"   final loss {record.loss:.3f}"
    lines = [head, f"{split} accuracy   " + "   ".join(f"{g} {_pct(v)}" for g, v in groups.items()),
             train]  # fmt: skip
    if per_class and record.per_class is not None:
        lines.append(f"per class       {_per_class(record.per_class)}")
    nc = record.nc or {}
    k = nc.get("num_classes")
    lines.append(f"neural collapse on the training set ({len(nc.get('minority') or [])} minority "
                 f"classes; at a simplex ETF of {k} classes: "
                 f"{METRICS['mc_weights'].label} = {METRICS['mc_weights'].etf(k):+.3f})"
                 if k else "neural collapse on the training set")  # fmt: skip
    shown = [name for name in REPORTED if nc.get(name) is not None]
    for i in range(0, len(shown), 3):
        lines.append("  " + "   ".join(f"{METRICS[n].label} {nc[n]:.3f}" for n in shown[i : i + 3]))
    return "\n".join(lines)


def summary(result: RunResult) -> str:
    """A one-screen text summary of a finished (or stopped) run."""
    cfg, counts = result.config, result.counts
    head = (
        f"{result.method} on {cfg.dataset} (imbalance ratio {cfg.imbalance_ratio:g}, "
        f"{cfg.profile}, counts {counts[0]}..{counts[-1]}), {result.epochs}/{cfg.train.epochs} "
        f"epochs on {cfg.train.device}, {result.train_s:.1f} s training"
    )
    return scores_text(result.final, cfg.split, head)


def _listed(items: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _data_options(args: argparse.Namespace) -> dict:
    """``load_dataset``'s options from the command line, refusing those the data set lacks."""
    spec = DATASETS[args.dataset]
    if spec.needs_root and args.data_root is None:
        raise UsageError(f"--dataset {args.dataset} needs --data-root DIR, the folder that "
                         f"holds it ({spec.description})")  # fmt: skip
    options = dict(imbalance_ratio=args.imbalance_ratio, profile=args.profile,
                   root=args.data_root, n_max=args.n_max, split=args.split)  # fmt: skip
    file_only = [n for n in ("split_dir", "image_size", "workers")
                 if getattr(args, n, None) is not None]  # fmt: skip
    if args.dataset not in FILELIST_DATASETS and file_only:
        raise UsageError(f"{', '.join(map(flag, file_only))}: only for "
                         f"{', '.join(FILELIST_DATASETS)}, not {args.dataset}")  # fmt: skip
    if args.dataset in FILELIST_DATASETS:
        options.update(split_dir=getattr(args, "split_dir", None),
                       image_size=getattr(args, "image_size", None))  # fmt: skip
    return options


def _allnc_options(args: argparse.Namespace) -> dict:
    options = given_settings(args, AllNCConfig)
    if options and args.method != ALLNC.name:
        flags = ", ".join(f"--no-{n.replace('_', '-')}" if v is False else flag(n)
                          for n, v in options.items())  # fmt: skip
        raise UsageError(f"{flags}: AllNC options, only for --method {ALLNC.name}, "
                         f"not {args.method}")  # fmt: skip
    return options


def cmd_train(args: argparse.Namespace) -> int:
    options = _allnc_options(args)
    settings = given_settings(args, TrainConfig)
    _check_device(settings.get("device"))
    if args.resume and args.out is None:
        raise UsageError("--resume needs --out DIR, the folder of the run to continue")
    data_options = _data_options(args)
    settings["device"] = distributed.init_from_env(settings.get("device", "auto"))
    if args.out is not None:  # before loading data or training anything
        try:
            distributed.main_first(
                lambda: check_out_dir(args.out, resume=args.resume, overwrite=args.overwrite)
            )
        except (OutDirError, InUseError) as err:
            raise UsageError(f"--out: {err}") from None
    seed = settings.pop("seed", 0)

    def load():
        return load_dataset(args.dataset, download=args.download, seed=seed, **data_options)

    try:  # rank 0 first: it may download or cache the data the others then read
        data = distributed.main_first(load)
        data = data if data is not None else load()
    except OSError as err:  # e.g. no network for --download, an unreadable --data-root
        raise UsageError(f"could not load {args.dataset}: {err}") from None
    try:
        result = run_method(args.method, data, backbone=args.backbone, seed=seed,
                            out_dir=args.out, resume=args.resume, overwrite=args.overwrite,
                            stop_after=args.stop_after, **settings, **options)  # fmt: skip
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


def cmd_evaluate(args: argparse.Namespace) -> int:
    _single_process("evaluate")
    _check_device(args.device)
    _check_file(args.json, "--json")
    try:
        record = evaluate_run(args.run, split=args.split, root=args.data_root,
                              split_dir=args.split_dir, device=args.device,
                              trust_checkpoint=args.trust_checkpoint)  # fmt: skip
    except OSError as err:  # e.g. an unreadable data folder
        raise UsageError(f"could not load the run's data: {err} (pass --data-root)") from None
    config = run_config(args.run, trust_checkpoint=True)
    split, device = args.split or config.split, str(pick_device(args.device))
    head = (f"{config.method} on {config.dataset} ({split} split), checkpoint of epoch "
            f"{record.epoch} in {args.run}, evaluated on {device}")  # fmt: skip
    print(scores_text(record, split, head, per_class=True))
    if args.json is not None:
        write_json(args.json, evaluation_json(record, config, args.run, split, device))
        print(f"wrote {args.json}")
    return 0


def evaluation_json(
    record: EpochRecord, config: RunConfig, run: Path, split: str, device: str
) -> dict:
    """What ``evaluate --json`` writes: the run, method, data set, split, device and epoch, and
    the evaluation under the names of the run's history.json (no training fields)."""
    training = ("lr", "loss", "loss_parts", "train_s", "samples", "samples_per_s", "geometry")
    scores = {k: v for k, v in record.as_dict().items() if k not in training}
    return {"run": str(run), "method": config.method, "dataset": config.dataset,
            "split": split, "device": device, **scores}  # fmt: skip


def cmd_bench(args: argparse.Namespace) -> int:
    _check_device(args.device)
    _check_file(args.json, "--json")
    result = run_benchmark(
        device=args.device, batch_size=args.batch_size, images=args.images, reps=args.reps,
        ref_workers=REFERENCE_WORKERS if args.ref_workers is None else args.ref_workers,
        quick=args.quick, mnist1d=args.mnist1d, pipeline=args.pipeline,
        pipeline_root=args.pipeline_root, pipeline_images=args.pipeline_images,
        image_size=args.image_size,
    )  # fmt: skip
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
    try:
        check_demo_out(args.out, overwrite=args.overwrite)
    except OutDirError as err:
        raise UsageError(f"--out: {err}") from None
    demo(args.out, epochs=args.epochs, smoke=args.smoke, seed=args.seed, progress=args.progress,
         overwrite=args.overwrite)  # fmt: skip
    return 0


def _study_command(args: argparse.Namespace) -> str:
    """The command line that reproduces ``args`` (every setting given spelled out)."""
    parts = ["python -m allnc_edu study"]
    for name in ("dataset", "profile", "imbalance_ratio", "n_max", "methods", "seeds", "split",
                 "data_root"):  # fmt: skip
        if getattr(args, name) is not None:
            parts.append(f"{flag(name)} {getattr(args, name)}")
    for name, value in given_settings(args, TrainConfig).items():
        if isinstance(value, bool):
            parts.append(flag(name) if value else f"--no-{name.replace('_', '-')}")
        else:
            parts.append(f"{flag(name)} {value}")
    parts += [f"--set {item}" for item in args.sets]
    parts += [f"--{name} {getattr(args, name)}" for name in ("json", "out")
              if getattr(args, name) is not None]  # fmt: skip
    return " ".join(parts)


def cmd_study(args: argparse.Namespace) -> int:
    _single_process("study")
    settings = {k: v for k, v in given_settings(args, TrainConfig).items()
                if k not in NOT_IN_STUDY}  # fmt: skip
    _check_device(settings.get("device"))
    _check_file(args.json, "--json")
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise UsageError(f"--seeds must be comma-separated integers, got {args.seeds!r}") from None
    data = _data_options(args)
    study = run_study(
        dataset=args.dataset, methods=[m.strip() for m in args.methods.split(",") if m.strip()],
        seeds=seeds, sets=parse_sets(args.sets), command=_study_command(args),
        json_path=args.json, runs_dir=args.out, overwrite=args.overwrite,
        **{k: v for k, v in data.items() if k not in ("split_dir", "image_size")}, **settings,
    )  # fmt: skip
    print(study_table(study["summary"]))
    if args.json is not None:
        print(f"wrote {args.json}")
    return 0


def cmd_grade(args: argparse.Namespace) -> int:
    if not args.notebook.is_file():
        raise UsageError(f"{args.notebook}: no such notebook")
    result = grade(args.notebook, timeout=args.timeout)
    print(format_grade(result, args.notebook.name))
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "train": cmd_train, "evaluate": cmd_evaluate, "bench": cmd_bench, "demo": cmd_demo,
    "study": cmd_study, "grade": cmd_grade,
}  # fmt: skip


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
        return flags.get(match.group(1), flag(match.group(1)))

    message = re.sub(r"\b(\w+)=True\b", on, message)
    message = re.sub(rf"\b({'|'.join(_PATH_OPTIONS)})\b", switch, message)
    message = message.replace("the same call", "the same command")
    return re.sub(r"^(\w+)(?= must be)", switch, message)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m allnc_edu`` and the ``allnc-edu`` script; returns the exit
    status (2 for bad arguments or settings, 1 for a diverged run, 130 for Ctrl-C)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except distributed.RankZeroError:  # rank 0 reports the error
        return 2
    except KeyboardInterrupt as err:  # Ctrl-C, or torchrun stopping this process: one line
        line = cli_spelling(str(err) or "interrupted", _flags_by_dest(parser, args.command))
        who = f"rank {distributed.rank()}: " if distributed.world_size() > 1 else ""
        print(f"allnc-edu {args.command}: {who}{line}", file=sys.stderr)
        return getattr(err, "exit_status", 130)
    except (UsageError, ValueError, TypeError, ImportError) as err:
        lines = str(err).strip().splitlines() or [type(err).__name__]
        line = cli_spelling(lines[0], _flags_by_dest(parser, args.command))
        shown = distributed.is_main()  # under torchrun, rank 0 speaks for all
        parser.exit(2, f"allnc-edu {args.command}: error: {line}\n" if shown else None)
    finally:
        distributed.teardown()


if __name__ == "__main__":
    sys.exit(main())
