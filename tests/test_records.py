"""records: the typed run record, its JSON round trip and the summary numbers it exposes."""

from __future__ import annotations

import json

import pytest

from allnc_edu.config import TrainConfig
from allnc_edu.records import (
    NC_FIELDS,
    SUMMARY_FIELDS,
    EpochRecord,
    RunConfig,
    RunResult,
)

CONFIG = RunConfig(dataset="gaussian", method="la", train=TrainConfig(epochs=2, batch_size=16,
                   lr=0.1), method_options={"tau": 1.0}, backbone="mlp", n_max=64,
                   data_seed=0)  # fmt: skip


def _nc(**values) -> dict:
    return {**dict.fromkeys(NC_FIELDS, 0.5), "num_classes": 4, **values}


def _record(epoch: int, *, evaluated: bool = True, **nc) -> EpochRecord:
    measured = {}
    if evaluated:
        measured = dict(train_acc=0.9, accuracy=0.5, minority_accuracy=0.25,
                        majority_accuracy=0.75, many=None, medium=0.75, few=0.25,
                        per_class=[1.0, 0.5, 0.5, 0.0], nc=_nc(**nc))  # fmt: skip
    return EpochRecord(epoch=epoch, lr=0.01, loss=1.0 / epoch, train_s=2.0, samples=120,
                       samples_per_s=60.0, loss_parts={"conv": 0.5}, **measured)  # fmt: skip


def _result(history: list[EpochRecord]) -> RunResult:
    return RunResult(config=CONFIG, history=history, counts=[64, 32, 16, 8], num_classes=4,
                     minority=[2, 3], shot_groups={"many": [], "medium": [0, 1], "few": [2, 3]},
                     samples_seen=120 * len(history))  # fmt: skip


def test_run_config_round_trips_and_refuses_unknown_keys() -> None:
    data = CONFIG.as_dict()
    assert json.loads(json.dumps(data)) == data
    assert RunConfig.from_dict(data) == CONFIG
    with pytest.raises(ValueError, match=r"no field\(s\) \['imbalance'\]"):
        RunConfig.from_dict({**data, "imbalance": 10})


def test_differences_ignore_only_cosmetic_fields() -> None:
    other = RunConfig.from_dict({**CONFIG.as_dict(), "device": "cuda", "progress": False})
    assert CONFIG.differences(other) == {}
    changed = RunConfig.from_dict({**CONFIG.as_dict(), "n_max": 32, "method_options": {}})
    assert CONFIG.differences(changed) == {"n_max": (64, 32), "method_options.tau": (1.0, None)}


def test_summary_numbers_are_those_of_the_last_epoch() -> None:
    result = _result([_record(1, nc1=2.0), _record(2, evaluated=False), _record(3, nc1=0.3)])
    assert result.nc1 == 0.3 and result.final.epoch == 3 and result.epochs == 3
    assert [r.epoch for r in result.evaluated] == [1, 3]
    assert result.train_s == pytest.approx(6.0) and not result.complete
    assert (result.many, result.medium, result.few) == (None, 0.75, 0.25)
    assert result.minority_accuracy == 0.25 and result.method == "la"
    assert result.options == {"tau": 1.0} and result.geometry is None
    summary = result.summary()
    assert list(summary) == list(SUMMARY_FIELDS) and json.loads(json.dumps(summary)) == summary


def test_a_run_without_an_evaluated_last_epoch_has_no_numbers() -> None:
    with pytest.raises(ValueError, match="no evaluated last epoch"):
        _ = _result([]).accuracy
    with pytest.raises(ValueError, match="no evaluated last epoch"):
        _ = _result([_record(1), _record(2, evaluated=False)]).nc1


def test_epoch_record_reads_nc_metrics_by_name_and_drops_non_finite() -> None:
    record = _record(1, nc1=float("inf"), mc_weights=-1 / 3)
    assert record.mc_weights == pytest.approx(-1 / 3) and record.num_classes == 4
    data = record.as_dict()
    assert data["nc"]["nc1"] is None and json.loads(json.dumps(data)) == data
    assert EpochRecord.from_dict(data).mc_weights == record.mc_weights
    assert _record(2, evaluated=False).nc1 is None
    with pytest.raises(ValueError, match="no field"):
        EpochRecord.from_dict({**data, "test_acc": 0.5})


def test_save_and_load_round_trip(tmp_path) -> None:
    result = _result([_record(1), _record(2)])
    run_path, history_path = result.save(tmp_path)
    assert (run_path.name, history_path.name) == ("run.json", "history.json")
    loaded = RunResult.load(tmp_path)
    assert loaded.config == result.config and loaded.history == result.history
    assert loaded.summary() == result.summary() and loaded.out_dir == tmp_path
    run = json.loads(run_path.read_text())
    assert run["complete"] and run["epochs_done"] == 2 and run["schema"] == 1
    run["schema"] = 99
    run_path.write_text(json.dumps(run))
    with pytest.raises(ValueError, match="schema 99"):
        RunResult.load(tmp_path)
    with pytest.raises(ValueError, match="no readable run"):
        RunResult.load(tmp_path / "missing")


def test_an_older_run_config_loads_with_the_defaults_of_newer_fields() -> None:
    new = {"world_size", "sync_bn", "split", "image_size", "data_root", "split_dir"}
    old = {k: v for k, v in CONFIG.as_dict().items() if k not in new}
    loaded = RunConfig.from_dict(old)
    assert loaded == CONFIG and loaded.world_size == 1 and loaded.split == "test"
    assert loaded.train.sync_bn is False
    assert loaded.data_root is None and loaded.split_dir is None and loaded.image_size is None


def test_a_run_json_from_before_a_setting_was_recorded_reads_as_that_version_ran() -> None:
    legacy = {"channels_last", "augment", "metrics_every", "workers"}
    old = {k: v for k, v in CONFIG.as_dict().items() if k not in legacy}
    loaded = RunConfig.from_dict(old)
    assert loaded.train.channels_last is False and loaded.train.augment is False
    assert loaded.train.metrics_every == 1 and loaded.train.workers is None


def test_the_training_settings_sit_flat_in_run_json() -> None:
    flat = CONFIG.as_dict()
    assert "train" not in flat and flat["epochs"] == 2 and flat["lr"] == 0.1
    assert RunConfig.from_dict(flat) == CONFIG


def test_moved_data_folders_are_cosmetic_but_world_size_is_not() -> None:
    moved = RunConfig.from_dict({**CONFIG.as_dict(), "data_root": "/new", "split_dir": "/lists"})
    assert CONFIG.differences(moved) == {}
    wider = RunConfig.from_dict({**CONFIG.as_dict(), "world_size": 2, "split": "validation"})
    assert CONFIG.differences(wider) == {"world_size": (1, 2), "split": ("test", "validation")}
