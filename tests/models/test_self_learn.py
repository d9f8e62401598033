"""Self-learning from the journal's closed trades: meta-model veto and trade weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aitrader.cli import main
from aitrader.core.decisions import EnsembleDecision, ModelVote
from aitrader.core.errors import ConfigError
from aitrader.core.paths import Home
from aitrader.workspace import Workspace
from aitrader.data.store import BarStore
from aitrader.journal import Journal
from aitrader.models.meta import META, META_SYMBOL
from aitrader.models.ml_predictor import MLPredictor
from aitrader.models.registry import ModelRegistry
from aitrader.models.self_learn import (
    META_FEATURES,
    MIN_HELD_OUT,
    NO_TRADES,
    closed_trades,
    self_learn,
    trade_dataset,
    trade_sample_weights,
)
from tests.models import helpers
from tests.models.helpers import fast_settings, promote_by_hand, sample_home

_trained_master = helpers._trained_master
trained_home = helpers.trained_home


def _write_trades(home: Home, n: int, *, seed: int = 3, coin: bool = False) -> list[float]:
    """n GOOG round trips; a trade wins exactly when rf's P(up) at entry was > 0.6 (or, with
    ``coin``, on a coin flip that nothing in the signal context can predict)."""
    rng = np.random.default_rng(seed)
    flips = np.random.default_rng(seed + 1000).random(n) < 0.5
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
            win = bool(flips[i]) if coin else p > 0.6
            exit_price = price * (1.05 if win else 0.95)
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
    rep = self_learn(Workspace.open(home=home, settings=fast_settings()))
    assert rep.status == "nothing" and rep.message == NO_TRADES == "no closed trades yet: nothing to learn"
    assert not home.journal.exists()  # reading never creates the journal
    assert trade_sample_weights(home=home, symbol="GOOG", index=pd.DatetimeIndex([]), weight=2.0) is None


def test_too_few_trades(tmp_path: Path) -> None:
    home = sample_home(tmp_path)
    _write_trades(home, 8)
    rep = self_learn(Workspace.open(home=home, settings=fast_settings()))
    assert rep.status == "too_few" and rep.trades == 8 and "too few" in rep.message
    assert not (home.models / META_SYMBOL).exists()


def test_trade_dataset_labels_and_features(tmp_path: Path) -> None:
    home = sample_home(tmp_path)
    probs = _write_trades(home, 12)
    trades = closed_trades(home)
    assert len(trades) == 12
    X, y = trade_dataset(Workspace.open(home=home, settings=fast_settings()))
    assert list(X.columns) == META_FEATURES
    np.testing.assert_allclose(X["p_rf"].to_numpy(), probs)
    assert y.tolist() == [1.0 if p > 0.6 else 0.0 for p in probs]
    assert X["side"].eq(1.0).all() and X["ta_rsi_14"].notna().all()
    assert X["p_lstm"].isna().all()  # that model did not vote


def test_meta_model_learns_and_vetoes(tmp_path: Path) -> None:
    home = sample_home(tmp_path)
    _write_trades(home, 60)
    s = fast_settings()
    rep = self_learn(Workspace.open(home=home, settings=s))
    assert rep.status == "promoted", rep.message
    assert rep.metrics["auc"] > 0.8  # wins are a function of p_rf: learnable out of sample
    assert rep.metrics["n_test"] >= MIN_HELD_OUT and rep.metrics["auc_p_value"] < 0.05
    reg = ModelRegistry(home.models)
    assert reg.current_version(META_SYMBOL, META) == rep.version
    # it records the window (first entry .. last exit) and the sides of its trades
    tw = reg.read_manifest(META_SYMBOL, META, rep.version)["training_window"]
    trades = closed_trades(home)
    assert pd.Timestamp(tw["start"]) == pd.Timestamp(trades["entry_time"].min())
    assert pd.Timestamp(tw["end"]) == pd.Timestamp(trades["exit_time"].max())
    assert tw["sides"] == ["buy"] and tw["rows"] == 60
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
    again = self_learn(Workspace.open(home=home, settings=s))
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


def test_trades_after_the_training_end_carry_no_weight(tmp_path: Path) -> None:
    home = sample_home(tmp_path)
    _write_trades(home, 10)  # entries at bars 600, 610, ..., 690
    idx = BarStore(home).read("GOOG", "1d").index[:655]
    w = trade_sample_weights(home=home, symbol="GOOG", index=idx, weight=2.0)
    assert w is not None and list(w.index[w == 2.0]) == list(idx[600:651:10])  # 6 entries inside
    assert w.iloc[-1] == 1.0  # the 4 later trades used to land on the last row


def test_min_trades_cannot_go_below_30(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = sample_home(tmp_path)
    _write_trades(home, 12)
    with pytest.raises(ConfigError, match="--min-trades must be at least 30 \\(got 10\\)"):
        self_learn(Workspace.open(home=home, settings=fast_settings()), min_trades=10)
    assert not (home.models / META_SYMBOL).exists()
    assert main(["--home", str(home.root), "self-learn", "--min-trades", "29"]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("aitrader: error: --min-trades must be at least 30 (got 29)") and "\n" not in err
    assert not (home.models / META_SYMBOL).exists()


def test_a_meta_model_at_chance_is_not_promoted(tmp_path: Path) -> None:
    home = sample_home(tmp_path)
    _write_trades(home, 60, coin=True)
    rep = self_learn(Workspace.open(home=home, settings=fast_settings()))
    assert rep.status == "candidate" and rep.version is not None, rep.message
    assert "not significantly above 0.5" in rep.message and rep.metrics["auc_p_value"] >= 0.05
    assert ModelRegistry(home.models).current_version(META_SYMBOL, META) is None


def test_too_few_held_out_trades_are_not_enough(tmp_path: Path) -> None:
    home = sample_home(tmp_path)
    _write_trades(home, 36)  # learnable, but the time-ordered folds hold out only 27 of them
    rep = self_learn(Workspace.open(home=home, settings=fast_settings()))
    assert rep.status == "candidate" and rep.metrics["n_test"] == 27
    assert "only 27 held-out trades (need 30)" in rep.message
    assert ModelRegistry(home.models).current_version(META_SYMBOL, META) is None


def test_backtests_over_its_training_window_do_not_use_it(trained_home: Home) -> None:
    from aitrader.backtest.engine import load_predictor, run_backtest

    promote_by_hand(trained_home, raw=True)  # the ensemble under test needs current, trading models
    _write_trades(trained_home, 60)
    s = fast_settings().derive(models={"enabled": ["rf", "xgb", "lgbm"]})
    rep = self_learn(Workspace.open(home=trained_home, settings=s))
    assert rep.status == "promoted", rep.message
    end = pd.Timestamp(closed_trades(trained_home)["exit_time"].max())
    for start in (end, end - pd.Timedelta(days=400)):  # overlapping, preceding
        notes: list[str] = []
        pred = load_predictor(models_home=trained_home, settings=s, symbol="GOOG", start=start, notes=notes)
        assert pred.meta is None and f"learned from trades up to {end.date()}" in notes[0]
    notes = []
    after = end + pd.Timedelta(days=3)
    assert load_predictor(models_home=trained_home, settings=s, symbol="GOOG", start=after, notes=notes).meta \
        is not None and "meta-model used" in notes[0]
    before = run_backtest(Workspace.open(home=trained_home, settings=s), symbol="GOOG", start=end - pd.Timedelta(days=30),
                          end=end + pd.Timedelta(days=60), mode="fast")
    mv = before.honesty["meta_veto"]
    assert mv["used"] is False and mv["asked"] == 0 and "learned from trades up to" in mv["note"]
    later = run_backtest(Workspace.open(home=trained_home, settings=s), symbol="GOOG", start=after, mode="fast")
    mv = later.honesty["meta_veto"]
    assert mv["used"] is True and mv["vetoed"]["sell"] == 0  # trained on long entries: never judges a sell
    assert mv["asked"] > mv["vetoed"]["buy"] > 0  # it judged the buys and vetoed some
