"""Rule filters: each veto, skip and pass-through."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from aitrader.config.settings import RulesConfig
from aitrader.core.decisions import EnsembleDecision, ModelVote
from aitrader.trading.rule_based_trader import BREADTH_UNAVAILABLE, apply_rules


def dec(signal: str = "buy", conf: float = 0.7) -> EnsembleDecision:
    return EnsembleDecision(symbol="GOOG", timestamp="2024-03-05T00:00:00", signal=signal,  # type: ignore[arg-type]
                            confidence=conf, policy="weighted_vote", reason="4/6 models up",
                            votes=[ModelVote("rf", "buy", 0.7)])


def row(**kw: float) -> pd.Series:
    base = {"close": 100.0, "ta_rsi_14": 55.0, "ta_sma_50": 95.0, "ctx_breadth": 0.6}
    base.update(kw)
    return pd.Series(base)


def test_clean_buy_passes_unchanged() -> None:
    d = dec()
    out, events = apply_rules(d, row(), cfg=RulesConfig(), has_position=False)
    assert out is d and events == []


def test_rsi_overbought_veto() -> None:
    out, events = apply_rules(dec(), row(ta_rsi_14=85.3), cfg=RulesConfig(rsi_overbought=80), has_position=False)
    assert out.signal == "hold" and out.confidence == 0.0
    assert out.reason == "vetoed by rsi_overbought: RSI(14) 85.3 > 80 (was buy 0.70: 4/6 models up)"
    assert [(e.rule, e.severity) for e in events] == [("rsi_overbought", "veto")]
    assert out.votes == dec().votes  # the votes are kept for the journal
    # At the threshold: not overbought.
    assert apply_rules(dec(), row(ta_rsi_14=80.0), cfg=RulesConfig(rsi_overbought=80),
                       has_position=False)[0].signal == "buy"


def test_uptrend_required() -> None:
    cfg = RulesConfig(require_uptrend_for_buy=True, trend_sma=50)
    out, events = apply_rules(dec(), row(close=90.0, ta_sma_50=95.0), cfg=cfg, has_position=False)
    assert out.signal == "hold" and events[0].rule == "uptrend"
    assert events[0].detail == "close 90.00 < SMA(50) 95.00"
    assert apply_rules(dec(), row(close=96.0), cfg=cfg, has_position=False)[0].signal == "buy"
    # Off by default.
    assert apply_rules(dec(), row(close=90.0), cfg=RulesConfig(), has_position=False)[0].signal == "buy"
    # SMA not warmed up yet: skipped, saying so.
    out, events = apply_rules(dec(), row(ta_sma_50=math.nan), cfg=cfg, has_position=False)
    assert out.signal == "buy" and [(e.rule, e.severity) for e in events] == [("uptrend", "info")]


def test_breadth_regime_filter() -> None:
    cfg = RulesConfig(breadth_min=0.3)
    out, events = apply_rules(dec(), row(ctx_breadth=0.25), cfg=cfg, has_position=False)
    assert out.signal == "hold"
    assert [(e.rule, e.detail) for e in events] == [
        ("breadth_filter", "S&P 500 breadth 0.25 < 0.3: weak market, no new buys")]
    assert "breadth_filter" in out.reason


@pytest.mark.parametrize("features", [row(ctx_breadth=math.nan),
                                      pd.Series({"close": 100.0, "ta_rsi_14": 50.0})])
def test_breadth_missing_is_skipped_and_said(features: pd.Series) -> None:
    out, events = apply_rules(dec(), features, cfg=RulesConfig(), has_position=False)
    assert out.signal == "buy"
    assert [(e.rule, e.detail, e.severity) for e in events] == [
        ("breadth_filter", BREADTH_UNAVAILABLE, "info")]


def test_sell_without_position_and_no_shorting_is_hold() -> None:
    out, events = apply_rules(dec("sell"), row(), cfg=RulesConfig(), has_position=False)
    assert out.signal == "hold" and events[0].rule == "no_short"
    # With shorting on the sell stands, unless RSI says oversold.
    assert apply_rules(dec("sell"), row(), cfg=RulesConfig(), has_position=False,
                       allow_short=True)[0].signal == "sell"
    out, events = apply_rules(dec("sell"), row(ta_rsi_14=12.0), cfg=RulesConfig(rsi_oversold=20),
                              has_position=False, allow_short=True)
    assert out.signal == "hold" and events[0].rule == "rsi_oversold"


def test_exits_are_never_filtered() -> None:
    # Selling a held position in an overbought, weak market must go through.
    bad = row(ta_rsi_14=95.0, ctx_breadth=0.05)
    out, events = apply_rules(dec("sell"), bad, cfg=RulesConfig(), has_position=True)
    assert out.signal == "sell" and events == []
    # A buy while holding (covering a short, or an add the risk manager will judge) is not filtered here.
    assert apply_rules(dec("buy"), bad, cfg=RulesConfig(), has_position=True)[0].signal == "buy"


def test_disabled_and_hold_pass_through() -> None:
    bad = row(ta_rsi_14=95.0)
    assert apply_rules(dec(), bad, cfg=RulesConfig(enabled=False), has_position=False)[0].signal == "buy"
    h = dec("hold")
    assert apply_rules(h, bad, cfg=RulesConfig(), has_position=False) == (h, [])


def test_first_veto_wins() -> None:
    cfg = RulesConfig(require_uptrend_for_buy=True)
    out, events = apply_rules(dec(), row(ta_rsi_14=90.0, close=10.0, ctx_breadth=0.1), cfg=cfg, has_position=False)
    assert [e.rule for e in events] == ["rsi_overbought"]


def test_breadth_unavailable_is_said_once_per_symbol(caplog: pytest.LogCaptureFixture) -> None:
    said: set[str] = set()
    first = apply_rules(dec(), row(ctx_breadth=math.nan), cfg=RulesConfig(), has_position=False, said=said)
    again = apply_rules(dec(), row(ctx_breadth=math.nan), cfg=RulesConfig(), has_position=False, said=said)
    assert first[0].signal == "buy" and again[0].signal == "buy"  # stands aside: never a veto
    assert [e.severity for e in first[1]] == ["info"] and again[1] == []
    assert caplog.text.count("breadth filter: skipped") == 1
    other = dec()
    other = EnsembleDecision(symbol="MSFT", timestamp=other.timestamp, signal="buy", confidence=0.7,
                             policy="weighted_vote", reason="r", votes=[])
    assert len(apply_rules(other, row(ctx_breadth=math.nan), cfg=RulesConfig(), has_position=False,
                           said=said)[1]) == 1


def test_regimes_allowed_vetoes_entries_in_other_regimes() -> None:
    cfg = RulesConfig(regimes_allowed=["trend_up", "low_vol"])
    out, events = apply_rules(dec(), row(), cfg=cfg, has_position=False, regime="high_vol")
    assert out.signal == "hold" and events[0].rule == "regime" and events[0].severity == "veto"
    assert "high_vol not in rules.regimes_allowed (trend_up, low_vol)" in out.reason
    kept, none = apply_rules(dec(), row(), cfg=cfg, has_position=False, regime="trend_up")
    assert kept.signal == "buy" and none == []
    # Warm-up ("unknown") is not allowed either; an exit is never filtered; no label: stand aside.
    assert apply_rules(dec(), row(), cfg=cfg, has_position=False, regime="unknown")[0].signal == "hold"
    assert apply_rules(dec("sell"), row(), cfg=cfg, has_position=True, regime="high_vol")[0].signal == "sell"
    aside, info = apply_rules(dec(), row(), cfg=cfg, has_position=False, regime=None)
    assert aside.signal == "buy" and info[0].severity == "info"
    # Empty list (the default) allows every regime.
    assert apply_rules(dec(), row(), cfg=RulesConfig(), has_position=False, regime="high_vol")[0].signal == "buy"
    with pytest.raises(ValueError, match="regimes_allowed"):
        RulesConfig(regimes_allowed=["sideways"])  # type: ignore[list-item]
@pytest.mark.parametrize("cfg", [
    RulesConfig(),
    RulesConfig(require_uptrend_for_buy=True, trend_sma=20, rsi_overbought=70.0, breadth_min=0.5),
    RulesConfig(breadth_filter=False),
    RulesConfig(enabled=False),
])
def test_buy_mask_is_apply_rules_row_by_row(cfg: RulesConfig) -> None:
    """The batch path's vectorised rules give every row the verdict of the one-decision function."""
    import numpy as np
    import pandas as pd

    from aitrader.core.decisions import EnsembleDecision
    from aitrader.trading.rule_based_trader import apply_rules, buy_mask

    rng = np.random.default_rng(3)
    n = 400
    frame = pd.DataFrame({"ta_rsi_14": rng.uniform(0, 100, n), "close": rng.uniform(90, 110, n),
                          "ta_sma_20": rng.uniform(90, 110, n), "ctx_breadth": rng.uniform(0, 1, n)})
    for col in frame.columns:  # missing and non-finite values stand aside in both
        frame.loc[rng.choice(n, 40, replace=False), col] = np.nan
        frame.loc[rng.choice(n, 5, replace=False), col] = np.inf
    mask = buy_mask(frame, cfg=cfg)
    buy = EnsembleDecision(symbol="X", timestamp="2020-01-01T00:00:00", signal="buy", confidence=1.0,
                           policy="t", reason="t")
    expected = [apply_rules(buy, frame.iloc[i], cfg=cfg, has_position=False)[0].signal == "buy" for i in range(n)]
    assert mask.tolist() == expected
    assert cfg.enabled is False or 0 < mask.sum() < n  # both verdicts occur
    assert buy_mask(frame.drop(columns=["ctx_breadth"]), cfg=cfg).sum() >= mask.sum()  # no column, no veto
