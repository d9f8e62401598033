"""Walk-forward backtests that replay the retraining routine.

The traded span is cut into windows of ``retrain_every`` bars. Before each window the
ONE retraining routine (:func:`aitrader.models.retrain.retrain`, what cron runs) is
replayed ``as_of`` the last bar before the window, on the trailing ``train_window`` bars
(plus indicator warm-up), and the gate promotes or keeps models exactly as in production.
The window is then traded with the promoted models, which never saw its bars (their
labels end ``horizon`` bars before ``as_of``; the tests check every manifest).

Models are trained in an isolated home (``wf_home``): the user's ``models/`` is never
touched. The bars are read from the user's store through in-memory views
(:meth:`aitrader.workspace.Workspace.as_of`): no bar file is written or linked.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from aitrader.backtest.engine import PredictorSignals, load_span
from aitrader.core.errors import DataError, ModelError
from aitrader.core.paths import Home
from aitrader.workspace import Workspace

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class WalkForwardWindow:
    """One retrain + trade step."""

    trade_start: str
    trade_end: str
    as_of: str
    bars_trained: int
    models: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> version, training_window
    retrain: list[str] = field(default_factory=list)  # the routine's step lines


def walk_forward_source(
    ws: Workspace,
    *,
    symbol: str,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    train_window: int,
    retrain_every: int,
    wf_home: Home,
    models: Sequence[str] | None = None,
    say: Callable[[str], None] | None = None,
) -> tuple[PredictorSignals, list[WalkForwardWindow]]:
    """Retrain before each window (models isolated in ``wf_home``, bars read in memory from
    ``ws`` as of each window: no file is staged) and return the schedule of predictors."""
    from aitrader.models.ml_predictor import MLPredictor
    from aitrader.models.retrain import retrain
    from aitrader.models.training import MAX_WARMUP

    if train_window < 50 or retrain_every < 1:
        raise DataError(f"--train-window must be >= 50 and --retrain-every >= 1 (got {train_window}, {retrain_every})")
    symbol = symbol.upper()
    hist, span = load_span(ws, symbol=symbol, start=start, end=end)
    first_pos = len(hist) - len(span)
    if first_pos < train_window:
        raise DataError(f"{symbol}: only {first_pos} bars before {span.index[0].date()}; --train-window "
                        f"{train_window} needs that many (start later or shorten the window)")
    if Path(wf_home.root).resolve() == Path(ws.home.root).resolve():
        raise DataError("walk-forward needs a separate models home (the user's models/ must stay untouched)")
    names = list(models or ws.settings.models.enabled)
    # The walk-forward ensemble is exactly the retrained models (a derived copy of the settings).
    wf = ws.with_models_home(wf_home.ensure()).with_settings(models={"enabled": names})
    settings = wf.settings
    schedule: list[tuple[pd.Timestamp, Any]] = []
    windows: list[WalkForwardWindow] = []
    registry = wf.registry
    probe = hist.iloc[max(0, first_pos - train_window - MAX_WARMUP):first_pos]
    warmup = _warmup_rows(wf, symbol, probe)
    for k in progress_bar(range(0, len(span), retrain_every), desc=f"walk-forward {symbol}", unit="window"):
        pos = first_pos + k  # first traded bar of this window, in hist
        as_of = hist.index[pos - 1]
        # The training rows are the trailing `train_window` bars (the newest `horizon` of
        # them are unlabelled, hence purged); the indicator warm-up before them is only read.
        lo = max(0, pos - train_window - warmup)
        lines: list[str] = []
        view = wf.as_of(as_of, starts={symbol: hist.index[lo]})
        rep = retrain(view, symbols=[symbol], as_of=as_of, refresh=False, models=names, echo=lines.append)
        if not rep.reports or rep.refused:
            raise ModelError(f"walk-forward retrain as of {as_of.date()} failed: "
                             + "; ".join(rep.refused.values() or [r.error or "" for r in rep.reports]))
        pred = MLPredictor.from_registry(home=wf_home, settings=settings, symbol=symbol)
        # No model with an edge is a valid outcome (that window holds); a model that failed is not.
        if not pred.models and not all("no edge" in e for e in pred.load_errors.values()):
            raise ModelError(f"walk-forward retrain as of {as_of.date()}: no model could be trained "
                             f"({'; '.join(pred.load_errors.values())})")
        stop = min(len(span), k + retrain_every) - 1
        win = WalkForwardWindow(trade_start=str(span.index[k]), trade_end=str(span.index[stop]), as_of=str(as_of),
                                bars_trained=min(train_window, pos), retrain=lines)
        for name, lm in pred.models.items():
            manifest = registry.read_manifest(symbol, name, lm.version)
            win.models[name] = {"version": lm.version, "training_window": manifest.get("training_window")}
        windows.append(win)
        schedule.append((span.index[k], pred))
        if say:
            say(f"walk-forward: retrained as of {as_of.date()} on the last {min(train_window, pos)} bars "
                f"(+{max(0, pos - lo - train_window)} warm-up) -> trading "
                f"{span.index[k].date()}..{span.index[stop].date()} with "
                + ", ".join(f"{n} {v['version']}" for n, v in win.models.items()))
    return PredictorSignals(schedule), windows


def progress_bar(items: Iterable[T], *, desc: str, unit: str) -> Iterable[T]:
    """A tqdm bar over ``items`` when stderr is a terminal; the plain items under cron, a pipe
    or a test (nothing extra in logs or JSON output)."""
    if not sys.stderr.isatty():
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit=unit, leave=False, file=sys.stderr)


def _warmup_rows(wf: Workspace, symbol: str, probe: pd.DataFrame) -> int:
    """How many leading bars training drops as indicator warm-up (a property of the
    features), measured on an in-memory view holding only ``probe``'s bars."""
    from aitrader.models.training import load_dataset

    view = wf.as_of(probe.index[-1], starts={symbol: probe.index[0]})
    ds = load_dataset(view, symbol=symbol, end=probe.index[-1])
    return max(0, len(probe) - wf.settings.labels.horizon - len(ds.X))
