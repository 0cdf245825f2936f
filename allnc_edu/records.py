"""Typed records of a training run: what was asked (``RunConfig``), what each epoch measured
(``EpochRecord``) and the whole run (``RunResult``).

``train.fit`` produces them; experiments, report, plots, the command line and the notebooks only
read them. On disk a run is two JSON files, written by :meth:`RunResult.save`: ``run.json`` (the
config, the data set's facts and the provenance: package, torch and CUDA versions, device, git
commit, start and end time) and ``history.json`` (one :class:`EpochRecord` per epoch).
:meth:`RunResult.load` reads them back.

Accuracies are fractions in [0, 1]; "minority" classes are ``groups.minority_classes(counts)``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checkpoint import json_safe, write_json
from .config import COSMETIC, TrainConfig
from .measures import METRICS

#: Version of the run.json / history.json layout.
SCHEMA = 1
RUN_FILE, HISTORY_FILE = "run.json", "history.json"

#: ``RunConfig`` fields that do not change the run, so a resume may differ in them (a data
#: folder may move).
COSMETIC_FIELDS = (*COSMETIC, "data_root", "split_dir")

#: Scalar ``metrics.NCMetrics`` fields (``measures.METRICS``), readable by name on
#: ``EpochRecord`` and ``RunResult`` (``record.nc1``, ``result.mc_weights``, ...).
NC_FIELDS = tuple(METRICS)

#: Accuracy fields of an evaluated ``EpochRecord`` (test set unless named ``train_acc``).
ACCURACY_FIELDS = (
    "accuracy",
    "minority_accuracy",
    "majority_accuracy",
    "many",
    "medium",
    "few",
    "train_acc",
)

#: The scalars of :meth:`RunResult.summary` (JSON-friendly, no history), the metrics of
#: ``measures.METRICS`` after the accuracies.
SUMMARY_FIELDS = ("method", *ACCURACY_FIELDS, *NC_FIELDS, "train_s", "samples_seen", "epochs",
                  "imbalance_ratio")  # fmt: skip


def _from_dict(cls, data: Mapping[str, Any]):
    """``cls(**data)``, refusing keys that are not fields of ``cls`` with a message naming them."""
    if not isinstance(data, Mapping):
        raise TypeError(f"{cls.__name__}.from_dict needs a mapping, got {type(data).__name__}")
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {unknown}; known fields: {known}")
    return cls(**data)


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run (``train.fit`` fills it in).

    Data: ``dataset`` (name), ``imbalance_ratio``, ``profile`` ("exp" or "step"), ``n_max``
    (head-class size), ``data_seed`` (seed of the long-tailed subset; None when unknown).
    Model: ``method`` (a ``methods.METHODS`` name), ``backbone`` (a ``models.BACKBONES`` name or
    the class name), ``method_options`` (every option of the method, defaults included).
    Training: ``train``, the ``config.TrainConfig`` with the data set's recipe filled in.
    Distribution: ``world_size`` (processes that trained it; a resume with another one is
    refused). Evaluation data: ``split`` ("test" or "validation"), ``image_size`` (file-list data
    sets; None otherwise). Cosmetic (``COSMETIC_FIELDS``, ignored by resume): the training
    settings that do not change the result (device, progress, workers), ``data_root`` (the data
    folder, None when built in) and ``split_dir`` (the split lists of a file-list data set).

    In ``run.json`` it is one flat object (the training settings beside the others); keys
    missing from an older ``run.json`` take the values that version used.
    """

    dataset: str
    method: str
    train: TrainConfig = field(default_factory=TrainConfig)
    imbalance_ratio: float = 1.0
    profile: str = "exp"
    n_max: int | None = None
    data_seed: int | None = None
    backbone: str = ""
    method_options: dict[str, Any] = field(default_factory=dict)
    world_size: int = 1
    split: str = "test"
    image_size: int | None = None
    data_root: str | None = None
    split_dir: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """All fields as plain JSON values, the training settings flat beside the others."""
        flat = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        flat.update(flat.pop("train").as_dict())
        return json.loads(json.dumps(flat))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        """The inverse of :meth:`as_dict`; unknown keys are refused, missing ones default."""
        if not isinstance(data, Mapping):
            raise TypeError(f"RunConfig.from_dict needs a mapping, got {type(data).__name__}")
        settings = {f.name for f in dataclasses.fields(TrainConfig)}
        train = {**_LEGACY_TRAIN, **{k: v for k, v in data.items() if k in settings}}
        rest = {k: v for k, v in data.items() if k not in settings}
        return _from_dict(cls, {**rest, "train": TrainConfig.from_dict(train)})

    def differences(self, other: RunConfig) -> dict[str, tuple[Any, Any]]:
        """``{field: (self's value, other's value)}`` for every non-cosmetic field that differs;
        a differing method option is named ``method_options.NAME`` (None when absent)."""
        mine, theirs = self.as_dict(), other.as_dict()
        out: dict[str, tuple[Any, Any]] = {}
        for k in mine:
            if k in COSMETIC_FIELDS or mine[k] == theirs[k]:
                continue
            if isinstance(mine[k], dict) and isinstance(theirs[k], dict):
                for sub in sorted(mine[k].keys() | theirs[k].keys()):
                    a, b = mine[k].get(sub), theirs[k].get(sub)
                    if a != b:
                        out[f"{k}.{sub}"] = (a, b)
            else:
                out[k] = (mine[k], theirs[k])
        return out


#: What a run.json written before a setting was recorded had in its place.
_LEGACY_TRAIN = {"channels_last": False, "augment": False, "metrics_every": 1,
                 "weight_decay": 5e-3, "device": "cpu"}  # fmt: skip


def _nc_property(name: str) -> property:
    def get(self) -> float | None:
        return None if self.nc is None else self.nc.get(name)

    return property(get, doc=f"``metrics.NCMetrics.{name}`` of the training set (None if absent).")


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch measured (``epoch`` is 1-based), or one evaluation (``evaluate.evaluate``:
    ``epoch`` 0, or the checkpoint's, and no training fields).

    Every epoch of a run: ``lr`` (at the end of the epoch), ``loss`` (mean over steps),
    ``loss_parts`` (epoch means of the method's loss parts), ``train_s`` (training seconds,
    evaluation excluded), ``samples`` (training samples drawn, a GBBN step's balanced batch
    included) and ``samples_per_s``. On evaluated epochs (``evaluated``): ``train_acc``
    (unaugmented training set), the test accuracies ``accuracy`` (overall),
    ``minority_accuracy`` and ``majority_accuracy`` (mean per-class accuracy over the minority
    classes and the others), ``many`` / ``medium`` / ``few`` (shot groups; None for an empty
    group), ``per_class`` (K,) and ``nc`` (``metrics.NCMetrics.as_dict()`` of the training set),
    whose scalars read by name (``record.nc1``, ``record.mc_weights``, ...). ``geometry``: with
    ``record_geometry``, the class means and the inference classifier, ``{"class_means": (K, d),
    "classifier": (K, d)}`` as nested lists.
    """

    epoch: int = 0
    lr: float | None = None
    loss: float | None = None
    train_s: float | None = None
    samples: int | None = None
    samples_per_s: float | None = None
    loss_parts: dict[str, float] = field(default_factory=dict)
    train_acc: float | None = None
    accuracy: float | None = None
    minority_accuracy: float | None = None
    majority_accuracy: float | None = None
    many: float | None = None
    medium: float | None = None
    few: float | None = None
    per_class: list[float | None] | None = None
    nc: dict[str, Any] | None = None
    geometry: dict[str, list[list[float]]] | None = None

    @property
    def evaluated(self) -> bool:
        """Whether accuracy and NC metrics were measured after this epoch."""
        return self.accuracy is not None

    @property
    def num_classes(self) -> int | None:
        """K, when the NC metrics were measured."""
        return None if self.nc is None else self.nc.get("num_classes")

    def as_dict(self) -> dict[str, Any]:
        """All fields as plain JSON values (non-finite floats become None)."""
        return json_safe(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EpochRecord:
        """The inverse of :meth:`as_dict`; unknown keys are refused."""
        return _from_dict(cls, data)


def _final_property(name: str) -> property:
    def get(self):
        return getattr(self.final, name)

    return property(get, doc=f"``{name}`` of the last epoch (see :class:`EpochRecord`).")


@dataclass
class RunResult:
    """A training run: its config, one :class:`EpochRecord` per epoch and the data set's facts.

    ``counts`` (K,) training samples per class, ``num_classes``, ``minority`` and
    ``shot_groups`` (``groups``), ``samples_seen`` (training samples drawn in all, a GBBN step's
    balanced batch included), ``provenance`` (package, torch, CUDA, device, git commit, start and
    end time) and ``out_dir`` (where it was written, or None).

    The summary numbers read as properties of the last epoch, which is always evaluated and is
    what a run reports (never an epoch picked on the test set): ``accuracy``,
    ``minority_accuracy``, ``majority_accuracy``, ``many``/``medium``/``few``, ``train_acc``,
    ``loss``, the NC metrics (``nc1``, ``mc_weights``, ``mc_means``, ``self_duality``, ...) and
    ``geometry``; and of the run: ``method``, ``options``, ``imbalance_ratio``, ``epochs`` (done),
    ``complete``, ``train_s`` and ``evaluated`` (the evaluated epochs, for curves).
    ``written``: the files of ``out_dir`` that the call which produced it wrote (not saved).
    """

    config: RunConfig
    history: list[EpochRecord]
    counts: list[int]
    num_classes: int
    minority: list[int]
    shot_groups: dict[str, list[int]]
    samples_seen: int = 0
    provenance: dict[str, Any] = field(default_factory=dict)
    out_dir: Path | None = None
    written: tuple[Path, ...] = field(default=(), compare=False)

    @property
    def final(self) -> EpochRecord:
        """The last epoch; raises ValueError when the run has none or it was not evaluated."""
        if not self.history or not self.history[-1].evaluated:
            raise ValueError("the run has no evaluated last epoch to report (train it first)")
        return self.history[-1]

    @property
    def evaluated(self) -> list[EpochRecord]:
        """The evaluated epochs, in order."""
        return [r for r in self.history if r.evaluated]

    @property
    def method(self) -> str:
        return self.config.method

    @property
    def options(self) -> dict[str, Any]:
        """The method's options (``config.method_options``)."""
        return self.config.method_options

    @property
    def imbalance_ratio(self) -> float:
        return self.config.imbalance_ratio

    @property
    def epochs(self) -> int:
        """Epochs done so far."""
        return self.history[-1].epoch if self.history else 0

    @property
    def complete(self) -> bool:
        """Whether all ``config.train.epochs`` epochs are done."""
        return self.epochs == self.config.train.epochs

    @property
    def train_s(self) -> float:
        """Training seconds over all epochs (evaluation excluded)."""
        return sum(r.train_s for r in self.history)

    @property
    def geometry(self) -> dict[str, list[list[float]]] | None:
        """The last recorded geometry (see :class:`EpochRecord`), or None."""
        recorded = [r.geometry for r in self.history if r.geometry is not None]
        return recorded[-1] if recorded else None

    accuracy = _final_property("accuracy")
    minority_accuracy = _final_property("minority_accuracy")
    majority_accuracy = _final_property("majority_accuracy")
    many = _final_property("many")
    medium = _final_property("medium")
    few = _final_property("few")
    per_class = _final_property("per_class")
    train_acc = _final_property("train_acc")
    loss = _final_property("loss")
    nc = _final_property("nc")

    def summary(self) -> dict[str, Any]:
        """The ``SUMMARY_FIELDS`` as a JSON-friendly dict (no history, no geometry), with every
        metric registered in ``measures.METRICS`` (an added one too) by its name."""
        values = {k: getattr(self, k) for k in SUMMARY_FIELDS if k not in NC_FIELDS}
        nc = self.nc or {}
        metrics = {name: nc.get(name) for name in METRICS}
        head = {k: values.pop(k) for k in ("method", *ACCURACY_FIELDS)}
        return json_safe({**head, **metrics, **values})

    def run_dict(self) -> dict[str, Any]:
        """What ``run.json`` holds: schema, config, the data set's facts, progress, provenance."""
        return json_safe(
            {
                "schema": SCHEMA,
                "config": self.config.as_dict(),
                "counts": list(self.counts),
                "num_classes": self.num_classes,
                "minority": list(self.minority),
                "shot_groups": self.shot_groups,
                "samples_seen": self.samples_seen,
                "epochs_done": self.epochs,
                "complete": self.complete,
                "provenance": self.provenance,
            }
        )

    def save(self, out_dir: str | os.PathLike) -> tuple[Path, Path]:
        """Write ``run.json`` and ``history.json`` into ``out_dir`` (atomically); returns both."""
        out = Path(out_dir)
        return (
            write_json(out / RUN_FILE, self.run_dict()),
            write_json(out / HISTORY_FILE, [r.as_dict() for r in self.history]),
        )

    @classmethod
    def from_dicts(
        cls, run: Mapping[str, Any], history: list[Mapping[str, Any]], out_dir: Path | None = None
    ) -> RunResult:
        """Rebuild a run from the contents of ``run.json`` and ``history.json``."""
        run = dict(run)
        schema = run.pop("schema", None)
        if schema != SCHEMA:
            raise ValueError(f"run.json has schema {schema!r}; this version reads {SCHEMA}")
        run.pop("epochs_done", None)
        run.pop("complete", None)
        known = {f.name for f in dataclasses.fields(cls)} - {"config", "history", "out_dir",
                                                             "written"}  # fmt: skip
        unknown = sorted(set(run) - known - {"config"})
        if unknown:
            raise ValueError(f"run.json has unknown key(s) {unknown}")
        return cls(
            config=RunConfig.from_dict(run.pop("config")),
            history=[EpochRecord.from_dict(r) for r in history],
            out_dir=out_dir,
            **run,
        )

    @classmethod
    def load(cls, out_dir: str | os.PathLike) -> RunResult:
        """Read a run written by :meth:`save` (or by ``fit(out_dir=...)``)."""
        out = Path(out_dir)
        try:
            run = json.loads((out / RUN_FILE).read_text(encoding="utf-8"))
            history = json.loads((out / HISTORY_FILE).read_text(encoding="utf-8"))
            return cls.from_dicts(run, history, out_dir=out)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"no readable run in {out}: {err}") from None
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"no readable run in {out}: not a run's files ({err!r})") from None


for _name in NC_FIELDS:  # record.nc1, result.mc_weights, ...: one per registered metric
    setattr(EpochRecord, _name, _nc_property(_name))
    setattr(RunResult, _name, _final_property(_name))
