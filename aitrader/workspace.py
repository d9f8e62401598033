"""The Workspace: the one place where the agent's parts are made and its data is reached.

Built once from ``(home, settings)`` (:meth:`Workspace.open`), it hands out the bar store,
bars, the model registry, the market context, per-symbol calendars, features, periods per
year, the data provider and broker factories, the journal, and the engine's parts. Every
entry point (CLI, backtest, walk-forward, retraining, dashboard, demo) asks it instead of
building its own, so the three modes cannot drift apart.

:meth:`Workspace.as_of` is an in-memory view that hides every bar after a time (store
reads, the market context and the features all see the cut data), which is how
walk-forward replays retraining at past dates without staging any file.

Settings are never mutated here: :meth:`Workspace.with_settings` derives a changed copy.
Venue adapters are imported only when a provider or broker is asked for, so read-only
users (the dashboard) never load :mod:`aitrader.venues`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import pandas as pd

from aitrader.config import Secrets, Settings
from aitrader.core.compute import parallel_map
from aitrader.core.errors import ConfigError, DataError, ProviderError
from aitrader.core.paths import Home
from aitrader.core.protocols import Broker, DataProvider
from aitrader.data.bars import bars_between, check_symbol, parse_timeframe, periods_per_year
from aitrader.data.store import BarStore
from aitrader.data.universe import UniverseStore, read_panel

if TYPE_CHECKING:
    from aitrader.data.calendar import MarketCalendar
    from aitrader.features.context import MarketContext
    from aitrader.journal import Journal
    from aitrader.models.registry import ModelRegistry
    from aitrader.trading.risk import RiskManager
    from aitrader.trading.signals import SignalSource

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

PROVIDERS: tuple[str, ...] = ("replay", "alpaca", "ibkr")
BROKERS: tuple[str, ...] = ("paper", "alpaca", "ibkr")
Sync = Literal["FULL", "NORMAL"]


class AsOfStore(BarStore):
    """A read-only, in-memory view of a :class:`BarStore` that hides bars after ``end``
    (and, for the symbols in ``starts``, bars before their first allowed time).

    Reads of the underlying files are cached in memory for the view's lifetime (and a
    view of a view cuts its parent's frames, so a walk-forward reads each file once);
    writes are refused, so a replay at a past date can never change the user's store.
    """

    base: BarStore
    parent: AsOfStore | None
    end: pd.Timestamp
    starts: dict[str, pd.Timestamp]

    def __init__(self, base: BarStore, *, end: pd.Timestamp,
                 starts: Mapping[str, pd.Timestamp] | None = None) -> None:
        self.root = base.root
        parent = base if isinstance(base, AsOfStore) else None
        self.parent = parent  # a nested view reads through its parent's in-memory frames
        self.base = parent.base if parent is not None else base
        self.end = min(pd.Timestamp(end), parent.end) if parent is not None else pd.Timestamp(end)
        inherited = parent.starts if parent is not None else {}
        self.starts = {**inherited, **{check_symbol(k): pd.Timestamp(v) for k, v in (starts or {}).items()}}
        self._frames: dict[tuple[str, str], pd.DataFrame] = {}

    def read(self, symbol: str, timeframe: str, start: pd.Timestamp | None = None,
             end: pd.Timestamp | None = None) -> pd.DataFrame:
        key = (check_symbol(symbol), timeframe)
        frame = self._frames.get(key)
        if frame is None:
            frame = (self.parent or self.base).read(symbol, timeframe)
            first = self.starts.get(key[0])
            frame = bars_between(frame, first, self.end)
            self._frames[key] = frame
        end = self.end if end is None else min(pd.Timestamp(end), self.end)
        return bars_between(frame, start, end)

    def write(self, symbol: str, timeframe: str, bars: pd.DataFrame, *, merge: bool = True) -> pd.DataFrame:
        raise DataError(f"the store as of {self.end} is a read-only view: cannot write {symbol} {timeframe}")


@dataclass
class Parts:
    """What the engine and the agent are built from."""

    journal: Journal
    broker: Broker
    signals: SignalSource
    risk: RiskManager
    context: MarketContext
    calendars: dict[str, MarketCalendar]


class Workspace:
    """The home, the settings, and everything made from them (see the module docstring)."""

    def __init__(self, *, home: Home, settings: Settings, store: BarStore | None = None) -> None:
        self.home = home
        self.settings = settings
        self._store = store
        self._context: MarketContext | None = None
        self._calendars: dict[str, MarketCalendar] = {}
        self._news: dict[str, tuple[float, pd.DataFrame]] = {}  # symbol -> (file mtime, scored articles)

    @classmethod
    def open(cls, *, home: Home, settings: Settings) -> Workspace:
        """The workspace of ``home`` configured by ``settings``."""
        return cls(home=home, settings=settings)

    def __getstate__(self) -> dict[str, Any]:
        # Crosses joblib workers: the caches are rebuilt there, not pickled.
        state = dict(self.__dict__)
        state["_context"] = None
        state["_calendars"] = {}
        return state

    # ------------------------------------------------------------------ derived views
    @property
    def cut(self) -> pd.Timestamp | None:
        """The time after which bars are hidden (None: nothing hidden)."""
        return self._store.end if isinstance(self._store, AsOfStore) else None

    def as_of(self, ts: pd.Timestamp | str, *, starts: Mapping[str, pd.Timestamp] | None = None) -> Workspace:
        """A view hiding every bar after ``ts`` (store reads, context, features); ``starts``
        also hides a symbol's bars before a time (a trailing training window). Same home."""
        return Workspace(home=self.home, settings=self.settings,
                         store=AsOfStore(self.store, end=pd.Timestamp(ts), starts=starts))

    def with_settings(self, settings: Settings | None = None, /, **update: Any) -> Workspace:
        """The same data under other settings: ``settings`` as given, or a validated copy
        of the current ones with ``update`` deep-merged (``Settings.derive``); settings are
        never mutated."""
        chosen = settings if settings is not None else self.settings
        if update:
            chosen = chosen.derive(**update)
        return Workspace(home=self.home, settings=chosen, store=self.store)

    def with_models_home(self, home: Home) -> Workspace:
        """The same bars, read-only, with models, journal and locks under another ``home``
        (walk-forward trains there so the user's ``models/`` stays untouched)."""
        base = self.store
        view = base if isinstance(base, AsOfStore) else AsOfStore(base, end=pd.Timestamp.max)
        return Workspace(home=home, settings=self.settings, store=view)

    # ------------------------------------------------------------------ data
    @property
    def store(self) -> BarStore:
        """The bar store (a read-only view under :meth:`as_of`)."""
        if self._store is None:
            self._store = BarStore(self.home)
        return self._store

    def timeframe(self, symbol: str) -> str:
        return self.settings.timeframe_for(symbol)

    def bars(self, symbol: str, timeframe: str | None = None, *, start: pd.Timestamp | None = None,
             end: pd.Timestamp | None = None) -> pd.DataFrame:
        """Stored bars of ``symbol`` (its configured timeframe by default); DataError if none."""
        tf = timeframe or self.timeframe(symbol)
        parse_timeframe(tf)
        return self.store.read(symbol, tf, start=start, end=end)

    @property
    def universes(self) -> UniverseStore:
        """Named symbol lists (``aitrader data import ... --universe NAME`` records them)."""
        return UniverseStore(self.home)

    def panel(self, universe: str, *, timeframe: str = "1d") -> pd.DataFrame:
        """The universe's bars as one ``(timestamp, symbol)`` frame (cut at :meth:`as_of`, if set)."""
        return read_panel(self.store, self.universes.members(universe), timeframe)

    def parallel_map(self, fn: Callable[[T], R], items: Sequence[T], *, progress: str | None = None) -> list[R]:
        """Fan ``fn`` over ``items`` with the ``compute`` settings (local processes or Ray)."""
        c = self.settings.compute
        return parallel_map(fn, items, executor=c.executor, address=c.address, n_jobs=c.n_jobs, progress=progress)

    def load_bars(self, symbols: Sequence[str]) -> dict[str, pd.DataFrame]:
        """Every symbol's stored bars; a DataError naming the first symbol with none."""
        out = {}
        for sym in symbols:
            out[sym] = self.bars(sym)
            if len(out[sym]) == 0:
                raise DataError(f"no stored bars for {sym} {self.timeframe(sym)}")
        return out

    @property
    def context(self) -> MarketContext:
        """SPX/VIX/breadth market context from the store (missing parts stay None)."""
        if self._context is None:
            from aitrader.features.context import load_context

            self._context = load_context(self.store, self.settings)
        return self._context

    def features(self, symbol: str, *, as_of: pd.Timestamp | None = None, bars: pd.DataFrame | None = None,
                 timeframe: str | None = None, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Causal features of ``symbol`` (its stored bars up to ``as_of``, or ``bars``) with
        the market context, at ``timeframe`` (default the symbol's); ``columns`` builds only
        those feature columns (no news columns)."""
        from aitrader.features.feature_engineering import build_features

        if as_of is not None:
            return self.as_of(as_of).features(symbol, bars=None if bars is None else bars.loc[:as_of],
                                              timeframe=timeframe, columns=columns)
        tf = timeframe or self.timeframe(symbol)
        frame = self.bars(symbol, tf) if bars is None else bars
        if columns is not None:  # a batch backtest's rule columns only (no news, no regimes: rules read neither)
            need_ctx = any(str(c).startswith("ctx_") for c in columns)
            return build_features(frame, self.context if need_ctx else None, timeframe=tf, columns=columns)
        feats = self.add_news(symbol, build_features(frame, self.context, timeframe=tf), timeframe=tf)
        if self.settings.regimes.features:  # regime_* columns (off by default: the models' inputs stay as they are)
            from aitrader.features.regime import add_regime_features

            feats = add_regime_features(feats, frame, self.settings)
        return feats

    # ------------------------------------------------------------------ news
    def news_scores(self, symbol: str) -> pd.DataFrame | None:
        """Scored stored news of ``symbol`` (``published``, ``score``), or None when
        ``sentiment.enabled`` is off or nothing is stored: then no ``news_*`` column exists and
        nothing changes. Re-scored when the news file changes (a cron download while running)."""
        if not self.settings.sentiment.enabled:
            return None
        from aitrader.data.news_store import NewsStore
        from aitrader.features.news import make_scorer, score_frame

        store = NewsStore(self.home)
        path = Path(store.path(symbol))
        if not path.exists():
            return None
        mtime = path.stat().st_mtime
        cached = self._news.get(symbol)
        if cached is None or cached[0] != mtime:
            scored = score_frame(store.read(symbol), make_scorer(self.settings, home=self.home))
            cached = (mtime, scored)
            self._news[symbol] = cached
        return cached[1]

    def add_news(self, symbol: str, features: pd.DataFrame, *, timeframe: str | None = None) -> pd.DataFrame:
        """``features`` with the ``news_*`` columns when sentiment is on (training, backtest and live)."""
        from aitrader.features.news import add_news_features

        return add_news_features(features, self.news_scores(symbol), timeframe=timeframe or self.timeframe(symbol))

    def periods_per_year(self, symbol: str) -> int:
        """Bars per year at ``symbol``'s timeframe on its calendar (annualisation)."""
        cal = self.settings.data.calendars.get(symbol.upper(), self.settings.calendar)
        return periods_per_year(self.timeframe(symbol), calendar=cal)

    # ------------------------------------------------------------------ calendars
    @property
    def default_calendar(self) -> MarketCalendar:
        return self._calendar_named(self.settings.calendar)

    def _calendar_named(self, name: str) -> MarketCalendar:
        if name not in self._calendars:
            from aitrader.data.calendar import MarketCalendar

            self._calendars[name] = MarketCalendar(name)
        return self._calendars[name]

    def calendar(self, symbol: str) -> MarketCalendar:
        """``symbol``'s exchange calendar (``data.calendars`` overrides ``calendar``)."""
        name = self.settings.data.calendars.get(symbol.upper(), self.settings.calendar)
        return self._calendar_named(name)

    def calendars(self, symbols: Sequence[str]) -> dict[str, MarketCalendar]:
        return {s: self.calendar(s) for s in symbols}

    # ------------------------------------------------------------------ models
    @property
    def registry(self) -> ModelRegistry:
        from aitrader.models.registry import registry_from_settings

        return registry_from_settings(self.home, self.settings)

    # ------------------------------------------------------------------ venues
    def provider(self, name: str | None = None, *, secrets: Secrets | None = None) -> DataProvider:
        """``"replay"`` (this workspace's store), ``"alpaca"`` or ``"ibkr"`` (default:
        ``data.provider``). Vendor SDKs are imported only when asked for."""
        key = (name or self.settings.data.provider or "").strip().lower()
        if key == "replay":
            from aitrader.venues.replay.data import ReplayProvider

            return ReplayProvider(store=self.store)
        if key not in PROVIDERS:
            raise ConfigError(f"unknown data provider {name!r}: use one of {', '.join(PROVIDERS)}")
        secrets = secrets if secrets is not None else Secrets.from_env()
        try:
            if key == "alpaca":
                from aitrader.venues.alpaca.data import AlpacaProvider

                return AlpacaProvider.from_env(secrets)  # type: ignore[no-any-return]
            from aitrader.venues.ibkr.data import IBKRProvider

            return IBKRProvider.from_env(secrets, self.settings)  # type: ignore[no-any-return]
        except ImportError as exc:
            raise ProviderError(f"{key} data provider is not available ({exc})") from None

    def broker(self, name: str | None = None, *, live: bool = False, secrets: Secrets | None = None,
               synchronous: Sync = "FULL", db_path: Any = None, fill_on: str = "next_open") -> Broker:
        """The broker adapter for ``name`` (default ``broker.name``); paper is its own adapter
        with every option from the settings, its state in ``db_path`` (default the journal)."""
        key = (name or self.settings.broker.name).strip().lower()
        if key == "paper":
            from aitrader.venues.paper import PaperBroker

            return PaperBroker.from_settings(self.settings, db_path=db_path or self.home.journal,
                                             synchronous=synchronous, fill_on=fill_on)  # type: ignore[arg-type]
        if key not in BROKERS:
            raise ConfigError(f"unknown broker {name!r}: allowed {', '.join(BROKERS)}")
        secrets = secrets or Secrets.from_env()
        if key == "alpaca":
            from aitrader.venues.alpaca import AlpacaBroker

            return AlpacaBroker.from_env(secrets, live=live)
        from aitrader.venues.ibkr import IBKRBroker

        # Both venues refuse a live endpoint or port in paper mode (and the reverse) before connecting.
        return IBKRBroker(host=secrets.ib_host, port=secrets.ib_port, client_id=secrets.ib_client_id, live=live)

    # ------------------------------------------------------------------ journal and engine
    def journal(self, *, synchronous: Sync | None = None, path: Any = None) -> Journal:
        """Open the journal (default ``home.journal``, ``agent.journal_sync``)."""
        from aitrader.journal import Journal

        if path is None:
            self.home.ensure()
        return Journal.open(path or self.home.journal, synchronous=synchronous or self.settings.agent.journal_sync)

    def signals(self, strategy: str, *, symbols: Sequence[str], params: dict[str, Any] | None = None) -> SignalSource:
        """The ML ensemble (``ensemble``/``ml``) or a rule strategy of the same engine."""
        if strategy in ("ensemble", "ml"):
            from aitrader.trading.signals import MLSignals

            return MLSignals(home=self.home, settings=self.settings, symbols=list(symbols))
        from aitrader.trading.strategies import make_strategy

        source: SignalSource = make_strategy(strategy, **(params or {}))  # type: ignore[assignment]
        return source

    def risk(self, symbols: Sequence[str]) -> RiskManager:
        from aitrader.trading.risk import RiskManager

        return RiskManager(self.settings.risk, symbols=list(symbols))

    def parts(self, *, broker_name: str, strategy: str, symbols: Sequence[str], live: bool = False,
              strategy_params: dict[str, Any] | None = None, replay: bool = False) -> Parts:
        """Journal, broker, signals, risk, context and calendars for the agent. The
        signals and calendars come first, and a remote broker before the journal, so a
        bad strategy, calendar or missing key opens nothing. (The paper venue keeps its
        state in the journal's file, so its journal is opened first.)"""
        signals = self.signals(strategy, symbols=symbols, params=strategy_params)
        calendars = self.calendars(symbols)
        sync: Sync = "NORMAL" if replay else self.settings.agent.journal_sync  # type: ignore[assignment]
        remote = (broker_name or self.settings.broker.name).strip().lower() != "paper"
        broker = self.broker(broker_name, live=live, synchronous=sync) if remote else None
        journal = self.journal(synchronous=sync)
        try:
            broker = broker or self.broker(broker_name, live=live, synchronous=sync)
            return Parts(journal=journal, broker=broker, signals=signals, risk=self.risk(symbols),
                         context=self.context, calendars=calendars)
        except BaseException:
            journal.close()
            raise

    def shadow_book(self, *, journal: Journal, symbols: Sequence[str], live_strategy: str,
                    calendars: Mapping[str, Any] | None = None, state_dir: Path | None = None,
                    synchronous: Sync = "NORMAL", features_fn: Any = None) -> Any:
        """The shadow A/B variants of ``abtest.variants`` (empty unless ``abtest.enabled``):
        each an engine on its own settings, signals and risk, a simulated paper venue whose
        state lives in ``state_dir/<variant>.sqlite`` (default ``<home>/shadow``), and the
        live journal's shadow tables. A bad variant (unknown strategy, invalid settings)
        is a ConfigError before anything is opened. ``features_fn``: the live engine's
        (a backtest's precomputed causal rows), default each engine builds its own."""
        from aitrader.journal.shadow import ShadowJournal
        from aitrader.trading.engine import CURSOR_KEY, DecisionEngine
        from aitrader.trading.shadow import ShadowBook, ShadowVariant

        ab = self.settings.abtest
        if not ab.enabled or not ab.variants:
            return ShadowBook()
        built = []
        for v in ab.variants:
            vws = self.with_settings(self.settings.derive(**v.settings)) if v.settings else self
            strategy = v.strategy or live_strategy
            params = v.params if (v.params or v.strategy) else dict(ab.strategy_params)
            built.append((v.name, vws, vws.signals(strategy, symbols=symbols, params=params)))
        folder = Path(state_dir) if state_dir is not None else self.home.root / "shadow"
        folder.mkdir(parents=True, exist_ok=True)
        variants = []
        for name, vws, signals in built:
            shadow = ShadowJournal(journal, name)
            state = folder / f"{name}.sqlite"
            if shadow.get_state(CURSOR_KEY) is None and state.exists():
                # The venue's state belongs to the variant's journal rows: a journal without
                # them (new or rotated) starts the variant's simulated account afresh.
                log.info("shadow variant %s: no rows in this journal; its simulated venue starts afresh", name)
                for suffix in ("", "-wal", "-shm"):
                    state.with_name(state.name + suffix).unlink(missing_ok=True)
            broker = vws.broker("paper", db_path=state, synchronous=synchronous)
            engine = DecisionEngine(settings=vws.settings, broker=broker, journal=shadow,
                                    signals=signals, risk=vws.risk(symbols), context=self.context,
                                    calendar=dict(calendars) if calendars is not None else None,
                                    news_fn=vws.add_news if vws.settings.sentiment.enabled else None,
                                    features_fn=features_fn)
            variants.append(ShadowVariant(name=name, engine=engine))
        return ShadowBook(variants)

    def trigger(self, *, timeframe: str, poll_seconds: float | None = None) -> Any:
        """APScheduler trigger in the exchange time zone.

        24/7 markets (and the fake-server tests) poll on an interval; exchange markets poll
        on a cron schedule on weekdays in and around market hours (the tick itself still
        checks holidays and early closes against the calendar).
        """
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        seconds = poll_seconds or self.settings.agent.poll_seconds
        if self.settings.calendar.strip() in ("24/7", "24/5"):
            return IntervalTrigger(seconds=seconds)
        tz = "America/New_York"
        if timeframe == "1d":
            # Daily bars complete at the close; decide a few minutes after it.
            return CronTrigger(day_of_week="mon-fri", hour=16, minute=5, timezone=tz)
        step = max(1, int(round(seconds / 60)))
        return CronTrigger(day_of_week="mon-fri", hour="9-16", minute=f"*/{step}", second=5, timezone=tz)


__all__ = ["BROKERS", "PROVIDERS", "AsOfStore", "Parts", "Workspace"]
