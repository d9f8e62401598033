"""Registry: gate, rollback, pruning, checksum and feature refusal."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aitrader.core.errors import IntegrityError, ModelError
from aitrader.models.registry import ModelRegistry, new_version_id
from tests.models.tiny_model import PickleModel, SideEffect, TinyLogit

FEATS = ["f1", "f2"]
CLASSES = {"tiny": TinyLogit, "pickly": PickleModel}


def _reg(root: Path, keep: int = 5) -> ModelRegistry:
    return ModelRegistry(root, keep_versions=keep, model_classes=CLASSES)


def _oos(quality: float, *, start: str = "2009-01-01", rows: int = 300) -> dict[str, list]:
    """Stored out-of-sample predictions: P(right class) = ``quality`` on every row."""
    y = (np.arange(rows) % 2).astype(float)
    p = np.where(y == 1, quality, 1 - quality)
    return {"t": [str(t) for t in pd.bdate_range(start, periods=rows)], "p": p.tolist(), "y": y.tolist()}


def _register(reg: ModelRegistry, auc: float | None, *, model: str = "tiny", coef: tuple[float, float] = (1.0, -1.0),
              feats: list[str] = FEATS, edge: bool | None = True, quality: float | None = None,
              oos_start: str = "2009-01-01", leak: str | None = None) -> str:
    """A version whose manifest records an edge verdict (``edge=None``: none recorded) and,
    with ``quality``, out-of-sample predictions for the gate's incumbent comparison."""
    cls = CLASSES[model]
    m = cls(feature_names=feats, coef=list(coef))
    metrics = {} if auc is None else {"auc": auc}
    extra: dict = {"leak": leak}
    if edge is not None:
        extra["edge"] = {"passed": edge, "reason": "beats always_up (test)" if edge else "does not beat always_up (test)"}
    if quality is not None:
        extra["oos"] = _oos(quality, start=oos_start)
    return reg.register("GOOG", model, m, feature_names=feats, label_config={"kind": "binary", "horizon": 5},
                        training_window={"first": "2004-08-19", "last": "2010-01-04", "rows": 1000},
                        metrics=metrics, seed=42, profile="quick", extra=extra)


def test_register_writes_manifest_with_checksums(tmp_path: Path) -> None:
    reg = _reg(tmp_path)
    v = _register(reg, 0.55)
    man = json.loads((tmp_path / "GOOG" / "tiny" / v / "manifest.json").read_text())
    assert man["feature_names"] == FEATS
    assert man["training_window"]["rows"] == 1000
    assert set(man["files"]) == {"tiny.json"}
    assert len(man["files"]["tiny.json"]) == 64
    assert man["libraries"]["numpy"] == np.__version__
    assert man["seed"] == 42 and man["profile"] == "quick" and man["created_at"]
    # no temp directories left behind
    assert [p.name for p in (tmp_path / "GOOG" / "tiny").iterdir() if p.name.startswith(".tmp")] == []
    assert reg.current_version("GOOG", "tiny") is None  # register never promotes


def test_version_ids_sort_by_time() -> None:
    a = new_version_id(pd.Timestamp("2026-11-22 00:15:00", tz="UTC").to_pydatetime())
    b = new_version_id(pd.Timestamp("2026-11-22 00:15:00.000001", tz="UTC").to_pydatetime())
    assert a.startswith("20261122T001500000000Z-") and a < b


def test_gate_first_version_needs_an_edge_too(tmp_path: Path) -> None:
    reg = _reg(tmp_path)
    v0 = _register(reg, 0.70, edge=False)  # a high AUC is not an edge over the baselines
    ok, reason = reg.promote_if_better("GOOG", "tiny", v0)
    assert not ok and "no edge: does not beat always_up" in reason and "kept as candidate" in reason
    assert reg.current_version("GOOG", "tiny") is None
    v1 = _register(reg, 0.55, quality=0.60)
    ok, reason = reg.promote_if_better("GOOG", "tiny", v1)
    assert ok and "(first version)" in reason


def test_gate_compares_with_the_incumbent_on_the_same_recent_rows(tmp_path: Path) -> None:
    reg = _reg(tmp_path)
    v1 = _register(reg, 0.55, quality=0.60)
    assert reg.promote_if_better("GOOG", "tiny", v1)[0]
    v2 = _register(reg, 0.50, quality=0.62, oos_start="2009-06-01")  # overlaps v1's rows, better there
    ok, reason = reg.promote_if_better("GOOG", "tiny", v2)
    assert ok and "vs current" in reason and "on the same" in reason
    v3 = _register(reg, 0.99, quality=0.58, oos_start="2009-06-01")  # worse on the common rows: AUC is ignored
    ok, reason = reg.promote_if_better("GOOG", "tiny", v3, tolerance=0.0)
    assert not ok and f"worse than current {v2}" in reason and "kept as candidate" in reason
    assert reg.current_version("GOOG", "tiny") == v2
    assert reg.gate_log("GOOG", "tiny")[-1]["reason"] == reason
    ok, _ = reg.promote_if_better("GOOG", "tiny", v3, tolerance=0.1)  # 0.545 vs 0.478: within tolerance
    assert ok
    v4 = _register(reg, 0.55, quality=0.50, oos_start="2015-01-01")  # no common rows: cannot compare
    ok, reason = reg.promote_if_better("GOOG", "tiny", v4)
    assert ok and "no common out-of-sample window" in reason
    statuses = {i.version: i.status for i in reg.list_versions("GOOG", "tiny")}
    assert statuses == {v1: "previous", v2: "previous", v3: "previous", v4: "current"}


def test_gate_refuses_without_verdict_and_on_a_leak(tmp_path: Path) -> None:
    reg = _reg(tmp_path)
    v = _register(reg, 0.55, edge=None)
    ok, reason = reg.promote_if_better("GOOG", "tiny", v)
    assert not ok and "no edge verdict" in reason
    v = _register(reg, 0.99, leak="leak alarm: feature 'ta_hint' has |correlation| 1.000 with the label")
    ok, reason = reg.promote_if_better("GOOG", "tiny", v)
    assert not ok and "'ta_hint'" in reason
    assert reg.current_version("GOOG", "tiny") is None


def test_rollback_and_manual_promote(tmp_path: Path) -> None:
    reg = _reg(tmp_path)
    v1, v2 = _register(reg, 0.55), _register(reg, 0.56)
    reg.promote_if_better("GOOG", "tiny", v1, metric="auc", tolerance=0.0)
    reg.promote_if_better("GOOG", "tiny", v2, metric="auc", tolerance=0.0)
    assert reg.rollback("GOOG", "tiny") == v1
    assert reg.current_version("GOOG", "tiny") == v1
    with pytest.raises(ModelError, match="no previous promoted version"):
        reg.rollback("GOOG", "tiny")
    reg.promote("GOOG", "tiny", v2)
    assert reg.current_version("GOOG", "tiny") == v2
    assert reg.rollback("GOOG", "tiny") == v1


def test_rollback_without_current(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="nothing to roll back"):
        _reg(tmp_path).rollback("GOOG", "tiny")


def test_keep_n_pruning_never_deletes_current(tmp_path: Path) -> None:
    reg = _reg(tmp_path, keep=2)
    v1 = _register(reg, 0.70, quality=0.7)
    reg.promote_if_better("GOOG", "tiny", v1, metric="auc", tolerance=0.0)
    later = []
    for q in (0.50, 0.51, 0.52):  # all worse on the same rows: stay candidates
        v = _register(reg, 0.6, quality=q)
        assert not reg.promote_if_better("GOOG", "tiny", v, metric="auc", tolerance=0.0)[0]
        later.append(v)
    kept = [i.version for i in reg.list_versions("GOOG", "tiny")]
    assert kept == [v1, *later[-2:]]  # newest two + current
    assert reg.current_version("GOOG", "tiny") == v1


def test_load_current_roundtrip(tmp_path: Path) -> None:
    reg = _reg(tmp_path)
    v = _register(reg, 0.55, coef=(2.0, 0.5))
    reg.promote_if_better("GOOG", "tiny", v, metric="auc", tolerance=0.0)
    lm = reg.load_current("GOOG", "tiny", expected_features=FEATS)
    assert lm.version == v and lm.feature_names == FEATS
    X = pd.DataFrame({"f1": [1.0], "f2": [2.0]})
    assert lm.predict_proba(X)[0] == pytest.approx(1 / (1 + np.exp(-3.0)))


def test_no_current_is_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no current tiny model for GOOG"):
        _reg(tmp_path).load_current("GOOG", "tiny", expected_features=FEATS)


def test_tampered_pickle_is_never_unpickled(tmp_path: Path) -> None:
    reg = _reg(tmp_path)
    v = _register(reg, 0.55, model="pickly")
    reg.promote_if_better("GOOG", "pickly", v, metric="auc", tolerance=0.0)
    art = tmp_path / "GOOG" / "pickly" / v / "model.pkl"
    marker = tmp_path / "pwned.txt"
    # Sanity: this payload really has a side effect when unpickled.
    probe = tmp_path / "probe.txt"
    pickle.loads(pickle.dumps(SideEffect(str(probe))))
    assert probe.read_text() == "unpickled!"
    art.write_bytes(pickle.dumps(SideEffect(str(marker))))
    with pytest.raises(IntegrityError, match=r"model\.pkl: sha256 does not match"):
        reg.load_current("GOOG", "pickly", expected_features=FEATS)
    assert not marker.exists()


def test_one_flipped_byte_is_refused_naming_the_file(tmp_path: Path) -> None:
    reg = _reg(tmp_path)
    v = _register(reg, 0.55)
    reg.promote_if_better("GOOG", "tiny", v, metric="auc", tolerance=0.0)
    art = tmp_path / "GOOG" / "tiny" / v / "tiny.json"
    data = bytearray(art.read_bytes())
    data[10] ^= 0x01
    art.write_bytes(bytes(data))
    with pytest.raises(IntegrityError) as exc:
        reg.load_current("GOOG", "tiny", expected_features=FEATS)
    assert str(art) in str(exc.value)


def test_missing_and_extra_files_are_refused(tmp_path: Path) -> None:
    reg = _reg(tmp_path)
    v = _register(reg, 0.55)
    reg.promote_if_better("GOOG", "tiny", v, metric="auc", tolerance=0.0)
    vdir = tmp_path / "GOOG" / "tiny" / v
    (vdir / "evil.pkl").write_bytes(b"x")
    with pytest.raises(IntegrityError, match=r"evil\.pkl: file not listed"):
        reg.load_current("GOOG", "tiny")
    (vdir / "evil.pkl").unlink()
    (vdir / "tiny.json").unlink()
    with pytest.raises(IntegrityError, match=r"tiny\.json: artifact file missing"):
        reg.load_current("GOOG", "tiny")


def test_feature_mismatch_is_refused(tmp_path: Path) -> None:
    reg = _reg(tmp_path)
    v = _register(reg, 0.55)
    reg.promote_if_better("GOOG", "tiny", v, metric="auc", tolerance=0.0)
    with pytest.raises(IntegrityError, match="feature mismatch: model needs f2 not provided"):
        reg.load_current("GOOG", "tiny", expected_features=["f1", "f3"])
    with pytest.raises(IntegrityError, match="different order"):
        reg.load_current("GOOG", "tiny", expected_features=["f2", "f1"])


def test_manifest_class_mismatch_is_refused(tmp_path: Path) -> None:
    reg = _reg(tmp_path)
    v = _register(reg, 0.55)
    reg.promote_if_better("GOOG", "tiny", v, metric="auc", tolerance=0.0)
    other = ModelRegistry(tmp_path, model_classes={"tiny": PickleModel})
    with pytest.raises(IntegrityError, match="written by"):
        other.load_current("GOOG", "tiny")
