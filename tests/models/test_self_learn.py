"""Self-learning from the journal's closed trades: meta-model veto and trade weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aitrader.data.store import BarStore
from aitrader.journal import Journal
from aitrader.models.ml_predictor import META, META_SYMBOL, MLPredictor
from aitrader.models.registry import ModelRegistry
from aitrader.models.self_learn import (
    META_FEATURES,
    NO_TRADES,
    closed_trades,
    self_learn,
    trade_dataset,
    trade_sample_weights,
)
from aitrader.core.decisions import EnsembleDecision, ModelVote
from aitrader.core.paths import Home
from tests.models.helpers import fast_settings, sample_home


def _write_trades(home: Home, n: int, *, seed: int = 3) -> list[float]:
    """n GOOG round trips; a trade wins exactly when rf's P(up) at entry was > 0.6."""
    rng = np.random.default_rng(seed)
    bars = BarStore(home).read("GOOG", "1d")
    entries = bars.index[600:600 + 10 * n:10]
    probs = []
    with Journal.open(home.journal) as j:
        conn = j._conn
        for i, t in enumerate(entries):
            p = float(rng.uniform(0.3, 0.9))
            probs.append(p)
            votes = [ModelVote(model="rf", signal="buy", confidence=p, prob_up=p, version="v1"),
                     ModelVote(model="xgb", signal="hold", confidence=0.9, prob_up=0.5 + rng.normal(0, 0.01))]
            d = EnsembleDecision(symbol="GOOG", timestamp=t.isoformat(), signal="buy", confidence=p,
                                 policy="weighted_vote", reason="test", votes=votes)
            did = j.record_decision(d, bar_time=t, model_versions={"rf": "v1"}, final_action="buy", rule_reasons=[])
            price = float(bars.loc[t, "close"])
            exit_price = price * (1.05 if p > 0.6 else 0.95)
            exit_t = bars.index[bars.index.get_loc(t) + 5]
            for k, (side, ts, px) in enumerate((("buy", t, price), ("sell", exit_t, exit_price))):
                coid = f"c{i}-{k}"
                conn.execute(
                    "INSERT INTO orders (client_order_id, decision_id, broker, symbol, instrument, asset_class, side,"
                    " quantity, order_type, status, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (coid, did if k == 0 else None, "paper", "GOOG", "GOOG", "stock", side, 10.0, "market",
                     "filled", ts.isoformat(), ts.isoformat()))
                conn.execute(
                    "INSERT INTO fills (fill_id, client_order_id, symbol, instrument, side, quantity, price,"
                    " commission, ts) VALUES (?,?,?,?,?,?,?,?,?)",
                    (f"f{i}-{k}", coid, "GOOG", "GOOG", side, 10.0, px, 0.0, ts.isoformat()))
            conn.commit()
    return probs


def test_no_journal_nothing_to_learn(tmp_path: Path) -> None:
    home = Home(tmp_path).ensure()
    rep = self_learn(home=home, settings=fast_settings())
    assert rep.status == "nothing" and rep.message == NO_TRADES == "no closed trades yet: nothing to learn"
    assert not home.journal.exists()  # reading never creates the journal
    assert trade_sample_weights(home=home, symbol="GOOG", index=pd.DatetimeIndex([]), weight=2.0) is None


def test_too_few_trades(tmp_path: Path) -> None:
    home = sample_home(tmp_path)
    _write_trades(home, 8)
    rep = self_learn(home=home, settings=fast_settings())
    assert rep.status == "too_few" and rep.trades == 8 and "too few" in rep.message
    assert not (home.models / META_SYMBOL).exists()


def test_trade_dataset_labels_and_features(tmp_path: Path) -> None:
    home = sample_home(tmp_path)
    probs = _write_trades(home, 12)
    trades = closed_trades(home)
    assert len(trades) == 12
    X, y = trade_dataset(home, fast_settings())
    assert list(X.columns) == META_FEATURES
    np.testing.assert_allclose(X["p_rf"].to_numpy(), probs)
    assert y.tolist() == [1.0 if p > 0.6 else 0.0 for p in probs]
    assert X["side"].eq(1.0).all() and X["ta_rsi_14"].notna().all()
    assert X["p_lstm"].isna().all()  # that model did not vote


def test_meta_model_learns_and_vetoes(tmp_path: Path) -> None:
    home = sample_home(tmp_path)
    _write_trades(home, 60)
    s = fast_settings()
    rep = self_learn(home=home, settings=s)
    assert rep.status == "promoted", rep.message
    assert rep.metrics["auc"] > 0.8  # wins are a function of p_rf: learnable out of sample
    reg = ModelRegistry(home.models)
    assert reg.current_version(META_SYMBOL, META) == rep.version
    # only the meta-model (base votes come from the rows below); a 2 bp round trip: P(up) 0.52 is a buy
    s = s.derive(models={"enabled": []}, broker={"slippage_bps": 0.0})
    pred = MLPredictor.from_registry(home=home, settings=s, symbol="GOOG", model_classes={})
    assert pred.meta is not None and pred.model_versions[META] == rep.version
    weak = pred.decide_from_row(pd.Series({"rf": 0.52, "xgb": 0.52}, name=pd.Timestamp("2012-01-03")))
    assert weak.signal == "hold" and weak.reason.startswith("meta-model veto")
    assert weak.votes[-1].model == META and weak.votes[-1].confidence < 0.5
    strong = pred.decide_from_row(pd.Series({"rf": 0.88, "xgb": 0.86}, name=pd.Timestamp("2012-01-03")))
    assert strong.signal == "buy" and strong.votes[-1].confidence >= 0.5
    # Running again on the same trades: an equal candidate, within tolerance of itself.
    again = self_learn(home=home, settings=s)
    assert again.metrics["auc"] == pytest.approx(rep.metrics["auc"])


def test_trade_sample_weights_mark_entry_bars(tmp_path: Path) -> None:
    home = sample_home(tmp_path)
    _write_trades(home, 10)
    idx = BarStore(home).read("GOOG", "1d").index
    w = trade_sample_weights(home=home, symbol="GOOG", index=idx, weight=2.0)
    assert w is not None and (w == 2.0).sum() == 10 and (w == 1.0).sum() == len(idx) - 10
    assert list(w.index[w == 2.0]) == list(idx[600:700:10])
    assert trade_sample_weights(home=home, symbol="SPX", index=idx, weight=2.0) is None
    assert trade_sample_weights(home=home, symbol="GOOG", index=idx, weight=1.0) is None
