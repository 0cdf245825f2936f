"""Every training setting, defined once: ``TrainConfig``, with its type, default, bounds and help.

``train.fit`` takes one (or keyword settings that build one), ``records.RunConfig`` records it
in ``run.json``, and the command line's ``train`` and ``study`` options are generated from its
fields, so a setting is spelled, bounded and explained in this file only. A default of None
means "the data set's recipe" (``data.DATASETS[name].recipe``): :meth:`TrainConfig.resolved`
fills it in, in one place, and the resolved values are what ``run.json`` records.

Example::

    config = TrainConfig(epochs=60, weight_decay=1e-2)
    fit(method, dataset, config)            # or fit(method, dataset, epochs=60, ...)
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._checks import SEED_MAX, check_choice, check_scalar


def setting(
    default: Any,
    help: str,
    *,
    low: float | None = None,
    high: float | None = None,
    include_low: bool = True,
    include_high: bool = True,
    choices: tuple[str, ...] | None = None,
    cosmetic: bool = False,
    cli: bool = True,
    reconstructed: bool = False,
) -> Any:
    """A field of a settings dataclass (``TrainConfig``, ``allnc.AllNCConfig``): its default and
    what the command line and the checks need.

    ``help`` is the option's text (``--help`` adds the default); ``low``/``high`` bound a number
    (``_checks.check_scalar``), ``choices`` a text; ``cosmetic`` settings do not change what a
    run computes (a resume may change them); ``cli=False`` keeps a setting to the Python API;
    ``reconstructed`` marks a choice the paper does not spell out (``docs/method.md``).
    """
    bounds = {"low": low, "high": high, "include_low": include_low, "include_high": include_high}
    meta = {"help": help, "bounds": bounds, "choices": choices, "cosmetic": cosmetic, "cli": cli,
            "reconstructed": reconstructed}  # fmt: skip
    return field(default=default, metadata=meta)


def check_settings(obj: Any) -> None:
    """Check and normalise every field of a frozen settings dataclass in place: a choice is one
    of its ``choices``, a bool a bool, a number finite, of its kind and within its bounds (None
    allowed where the default is None); numbers are stored as their kind."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if value is None and f.default is None:
            continue
        kind = field_kind(type(obj), f.name)
        if f.metadata.get("choices"):
            check_choice(f.name, value, f.metadata["choices"])
        elif kind is str:
            if not isinstance(value, str) or not value:
                raise TypeError(f"{f.name} must be a non-empty text, got {value!r}")
        else:
            value = check_scalar(f.name, value, kind=kind, **f.metadata["bounds"])
            object.__setattr__(obj, f.name, value)


@functools.cache
def _kinds(cls: type) -> dict[str, type]:
    hints = typing.get_type_hints(cls)
    return {name: next(a for a in typing.get_args(h) if a is not type(None)) if typing.get_args(h)
            else h for name, h in hints.items()}  # fmt: skip


def field_kind(cls: type, name: str) -> type:
    """The kind (bool, int, float or str) of the field ``name`` of ``cls``, from its annotation
    (``int | None`` -> int)."""
    return _kinds(cls)[name]


@dataclass(frozen=True)
class TrainConfig:
    """How to train: optimisation, precision, evaluation cadence, device. See each field's
    ``help`` (``dataclasses.fields(TrainConfig)[i].metadata["help"]``) or ``train --help``."""

    epochs: int | None = setting(
        None,
        "length of the run; the cosine learning-rate schedule spans all of it (default: the "
        "data set's recipe: 200 for CIFAR, 90 for the image-file data sets, 20 for the others)",
        low=1,
    )
    batch_size: int | None = setting(
        None,
        "samples per step; under torchrun the global batch (default: the recipe's: 64 for "
        "CIFAR, 256 for the image-file data sets, 128 for the others)",
        low=2,
    )
    lr: float | None = setting(
        None,
        "peak learning rate of the cosine schedule, per global batch (default: the recipe's: "
        "0.01 for CIFAR, 0.1 for the others)",
        low=0,
        include_low=False,
    )
    momentum: float = setting(0.9, "SGD momentum", low=0, high=1, include_high=False)
    weight_decay: float | None = setting(
        None,
        "SGD weight decay (default: the recipe's: 5e-3; ImageNet-LT and Places-LT 5e-4, "
        "iNaturalist 2018 1e-4)",
        low=0,
    )
    warmup_epochs: float = setting(
        0.0, "epochs of linear learning-rate warm-up before the cosine decay", low=0
    )
    metrics_every: int | None = setting(
        None,
        "measure accuracy and the NC metrics every N epochs, and after the last one (default: "
        "the recipe's: 10 for CIFAR and the image-file data sets, 2 for MNIST-1D, 1 for "
        "Gaussians, so that evaluation takes under 15% of a run)",
        low=1,
    )
    augment: bool | None = setting(
        None,
        "augment on the device: images are randomly cropped (padding 4) and flipped, signals "
        "shifted by up to 4 positions (default: on for images, off for signals)",
    )
    amp: bool = setting(
        True,
        "bfloat16 autocast where the hardware runs it natively (CUDA cards with bfloat16, "
        "AVX-512 CPUs); elsewhere, and when off, float32",
    )
    channels_last: bool = setting(True, "channels_last memory format for image models", cli=False)
    compile: bool = setting(False, "torch.compile the backbone (pays off on a GPU, long runs)")
    seed: int = setting(
        0,
        "seed of the data subset, the initialisation and the shuffling",
        low=0,
        high=SEED_MAX,
    )
    record_geometry: bool = setting(
        False,
        "also keep the class means and the classifier of every evaluated epoch",
        cli=False,
    )
    sync_bn: bool = setting(
        False,
        "under torchrun: BatchNorm statistics over the global batch (SyncBatchNorm; CUDA)",
    )
    workers: int | None = setting(
        None,
        "processes decoding images for the image-file data sets (default: the cores less "
        "one, at most 8)",
        low=0,
        cosmetic=True,
    )
    device: str = setting(
        "auto",
        "where to train: auto (CUDA, then Apple MPS, then the CPU), cpu, cuda, cuda:1 or mps",
        cosmetic=True,
    )
    progress: bool = setting(True, "show a progress bar", cosmetic=True)

    def __post_init__(self) -> None:
        if not isinstance(self.device, str) and hasattr(self.device, "type"):  # a torch.device
            object.__setattr__(self, "device", str(self.device))
        check_settings(self)

    def resolved(self, recipe: Mapping[str, Any], *, images: bool) -> TrainConfig:
        """This config with each None taken from ``recipe`` (a data set's recipe, e.g.
        ``{"epochs": 20, "batch_size": 128, "lr": 0.1, "weight_decay": 5e-3,
        "metrics_every": 2}``) and ``augment`` from the inputs (on for ``images``); checks
        that the warm-up fits in the run."""
        fill = {k: recipe[k] for k in RECIPE_SETTINGS if getattr(self, k) is None and k in recipe}
        missing = [k for k in RECIPE_SETTINGS if getattr(self, k) is None and k not in fill]
        if missing:
            raise ValueError(f"no recipe value for {', '.join(missing)}: give them")
        if self.augment is None:
            fill["augment"] = images
        config = dataclasses.replace(self, **fill)
        check_scalar("warmup_epochs", config.warmup_epochs, low=0, high=config.epochs)
        return config

    def as_dict(self) -> dict[str, Any]:
        """Every setting as a plain value."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """The inverse of :meth:`as_dict`; unknown keys are refused, missing ones default."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"TrainConfig has no setting(s) {unknown}; known: {sorted(known)}")
        return cls(**data)


#: The settings a data set's recipe fills in when they are None.
RECIPE_SETTINGS = ("epochs", "batch_size", "lr", "weight_decay", "metrics_every")
#: Settings that do not change what a run computes (a resume may change them).
COSMETIC = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.metadata["cosmetic"])
#: Recipe values for a data set without one of its own.
FALLBACK_RECIPE = {"epochs": 20, "batch_size": 64, "lr": 0.01, "weight_decay": 5e-3,
                   "metrics_every": 1}  # fmt: skip
