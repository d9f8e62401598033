"""The portfolio agent on a live feed: five symbols served by the Alpaca fake (alpaca-py's own
HTTP code on both sides), a hand-driven clock for the staleness rule, and a tiny hand-promoted
pooled model for ``topk``."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aitrader.config import load_settings
from aitrader.data.synthetic import synthetic_bars
from aitrader.journal import Journal
from aitrader.trading.agent import Agent
from aitrader.trading.feeds import LiveFeed
from aitrader.trading.portfolio_engine import PortfolioEngine
from aitrader.trading.risk import RiskManager

KEY, SECRET = "k", "s"
NOW = pd.Timestamp("2026-01-02")  # every fake bar (2020) is complete by then
DAY = 86_400.0
SYMBOLS = ("S00", "S01", "S02", "S03", "S04")


def aligned_frames(n_bars: int = 90, *, seed: int = 3) -> dict[str, pd.DataFrame]:
    """Five symbols with a bar on every business day from 2020-01-01 (live polls stay in step)."""
    return {s: synthetic_bars(n_bars, seed=seed + j, freq="B", start="2020-01-01", price=20.0 + 10 * j,
                              volatility=0.02) for j, s in enumerate(SYMBOLS)}


class Clock:
    """The feed's wall clock: one bar interval (a day) passes per poll."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def start_fake(frames: dict[str, pd.DataFrame], *, visible: int, ends: dict[str, int] | None = None) -> Any:
    """The Alpaca fake serving ``frames`` live from bar ``visible`` on; ``ends`` cuts a symbol's
    bars (it then stops delivering: a stale member)."""
    from tests.fakes.alpaca_fake import AlpacaFake

    fake = AlpacaFake(api_key=KEY, secret_key=SECRET, page_size=1000)
    for sym, df in frames.items():
        fake.load_bars(sym, df.iloc[: (ends or {}).get(sym, len(df))])
        fake.set_live(sym, visible=visible)
    return fake.start()


@dataclass
class Rig:
    """One portfolio agent wired to the fake through the real Alpaca adapters."""

    agent: Agent
    feed: LiveFeed
    clock: Clock
    db: Path
    fake: Any
    closers: list[Callable[[], None]] = field(default_factory=list)

    def poll(self, n: int = 1) -> None:
        for _ in range(n):
            self.clock.t += DAY
            self.agent.poll_once(self.feed, NOW)

    def close(self) -> None:
        for fn in reversed(self.closers):
            fn()
        self.closers.clear()

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        con = sqlite3.connect(self.db)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def venue_ids(self) -> list[str]:
        """Client ids of every order POST the venue received, in order (a re-send would show twice)."""
        return [str(b.get("client_order_id")) for b in self.fake.order_posts()]


def rig(tmp_path: Path, fake: Any, scores: Any, *, k: int = 2, every: int = 1, history: int = 130,
        max_stale_fraction: float = 0.5, start: bool = True) -> Rig:
    from aitrader.venues.alpaca import AlpacaBroker
    from aitrader.venues.alpaca.data import AlpacaProvider

    settings = load_settings().derive(risk={"max_open_positions": 20},
                                      agent={"max_stale_fraction": max_stale_fraction})
    provider = AlpacaProvider(api_key=KEY, secret_key=SECRET, data_url=fake.url)
    broker = AlpacaBroker(api_key=KEY, secret_key=SECRET, base_url=fake.url, provider=provider, sleep=lambda s: None)
    db = tmp_path / "journal.sqlite"
    journal = Journal.open(db, synchronous="NORMAL")
    syms = list(SYMBOLS)
    engine = PortfolioEngine(settings=settings, broker=broker, journal=journal,
                             risk=RiskManager(settings.risk, symbols=syms), symbols=syms, scores=scores, k=k,
                             rebalance_every=every)
    clock = Clock()
    feed = LiveFeed(provider, symbols=syms, timeframes=dict.fromkeys(syms, "1d"), lookback_bars=history,
                    stale_after_bars=1.5, clock=clock)
    agent = Agent(engine=engine, journal=journal, symbols=syms, history_bars=history)
    agent.max_stale_fraction = settings.agent.max_stale_fraction
    out = Rig(agent=agent, feed=feed, clock=clock, db=db, fake=fake,
              closers=[provider.close, broker.close, journal.close])
    if start:
        agent.seed_live(feed)
        agent.start()
    return out


def ranked_scores(order_by_date: Callable[[pd.Timestamp], Sequence[str]]) -> Any:
    """A ScoreFn from a ranking per date (best first): fixed books, so tests know what must trade."""
    def at(ts: pd.Timestamp, history: Any, symbols: Sequence[str]) -> pd.Series:
        ranking = list(order_by_date(ts))
        return pd.Series({s: float(len(ranking) - ranking.index(s)) if s in ranking else np.nan for s in symbols})
    return at


def register_pooled(home_models: Path, universe: str, panel: pd.DataFrame, *, seed: int = 0,
                    kind: str = "lgbm") -> str:
    """A tiny lgbm (or pooled lstm) fit on ``panel``'s cross-sectional features, registered under
    ``universe`` and promoted by hand (a labelled override: no RankIC gate on five synthetic symbols)."""
    from aitrader.features.cross_section import xs_features, xs_labels
    from aitrader.models.registry import ModelRegistry

    X = xs_features(panel)
    y = (xs_labels(panel, horizon=5)["label"] > 0.5).astype(float)
    ok = np.isfinite(xs_labels(panel, horizon=5)["label"].to_numpy()) & X["a_ret_20"].notna().to_numpy()
    model: Any
    if kind == "lstm":
        from aitrader.models.universe_seq import make_pooled_sequence

        model = make_pooled_sequence("lstm", profile="quick", seed=seed, feature_names=list(X.columns), epochs=1,
                                     hidden=8, batch_size=128, sequence_length=8, torch_threads=1)
    else:
        from aitrader.models.zoo import make_model

        model = make_model("lgbm", profile="quick", seed=seed, feature_names=list(X.columns), n_estimators=15,
                           n_jobs=1)
    model.fit(X[ok], y[ok])
    reg = ModelRegistry(home_models)
    dates = panel.index.get_level_values(0)
    version = reg.register(universe, kind, model, feature_names=list(X.columns),
                           label_config={"kind": "cross_section_rank", "horizon": 5, "target": "label > 0.5"},
                           training_window={"first": str(dates[0]), "last": str(dates[-1])},
                           metrics={}, seed=seed, profile="quick", extra={"universe": universe})
    reg.promote(universe, kind, version)
    return version
