"""Validate bars and repair only what is safe to repair.

:func:`validate` finds every problem we know of and returns a :class:`Report` (counts
and first examples per issue kind). :func:`fix` repairs only what needs no guessing:
it drops duplicate timestamps (the last one wins, like a newer download), sorts, and
drops rows that cannot be real prices (NaN/inf, non-positive, implausibly large such
as 1e308, inconsistent OHLC, negative volume). It never fills or invents a price: gaps against the exchange calendar,
bars outside market hours and suspicious one-bar jumps (likely unadjusted splits) are
reported for a human to decide.

Close-only series (e.g. VIX) are validated on ``close`` (and ``volume`` if present) only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from aitrader.core.errors import DataError
from aitrader.data.bars import TIMEFRAMES, parse_timeframe
from aitrader.data.calendar import MarketCalendar

MAX_EXAMPLES = 5

# Issue kinds in report order, with a human description and whether fix() repairs them.
ISSUE_KINDS: dict[str, tuple[str, bool]] = {
    "duplicate_timestamps": ("rows repeating an earlier timestamp", True),
    "unsorted": ("rows older than the row before them", True),
    "nan_or_inf": ("rows with a missing or infinite value", True),
    "non_positive_price": ("rows with a price <= 0", True),
    "high_below_low": ("rows with high < low", True),
    "open_close_outside_range": ("rows with open or close outside [low, high]", True),
    "negative_volume": ("rows with volume < 0", True),
    "implausible_value": ("rows with a price above 1e9 or a volume above 1e15 (corrupt value?)", True),
    "missing_bars": ("bars the exchange calendar expects but the data lacks", False),
    "off_calendar": ("bars stamped while the market is closed", False),
    "jumps": ("one-bar moves above the jump threshold (unadjusted split or bad tick?)", False),
}
# No traded instrument is quoted above a billion or trades 1e15 units in one bar; such a
# value (e.g. 1e308) is a corrupt cell and would overflow every feature computed from it.
MAX_PRICE = 1e9
MAX_VOLUME = 1e15
FIXABLE: frozenset[str] = frozenset(k for k, (_, f) in ISSUE_KINDS.items() if f)


@dataclass
class Issue:
    """One kind of problem: how many rows/bars and the first few examples."""

    kind: str
    count: int
    examples: list[str] = field(default_factory=list)

    @property
    def fixable(self) -> bool:
        return self.kind in FIXABLE

    @property
    def description(self) -> str:
        return ISSUE_KINDS[self.kind][0]


@dataclass
class Report:
    """What :func:`validate` found in one symbol's bars."""

    symbol: str
    timeframe: str
    calendar: str | None
    rows: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    close_only: bool
    jump_threshold: float
    issues: dict[str, Issue] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.issues

    @property
    def fixable(self) -> bool:
        """True if :func:`fix` would change something."""
        return any(i.fixable for i in self.issues.values())

    def count(self, kind: str) -> int:
        issue = self.issues.get(kind)
        return issue.count if issue else 0

    def format(self) -> str:
        """A short human-readable block, one line per issue kind."""
        span = f"{_fmt(self.first)} .. {_fmt(self.last)}" if self.first is not None else "empty"
        cal = f", calendar {self.calendar}" if self.calendar else ""
        kind = ", close only" if self.close_only else ""
        head = f"{self.symbol} {self.timeframe}: {self.rows} rows, {span}{cal}{kind}"
        if self.ok:
            return f"{head}: OK"
        lines = [f"{head}: {sum(i.count for i in self.issues.values())} issue(s)"]
        for issue in self.issues.values():
            tag = "fixable" if issue.fixable else "report only"
            ex = f"; e.g. {', '.join(issue.examples)}" if issue.examples else ""
            lines.append(f"  {issue.kind}: {issue.count} {issue.description} [{tag}]{ex}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        return {
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "calendar": self.calendar,
            "rows": self.rows,
            "first": _fmt(self.first) if self.first is not None else None,
            "last": _fmt(self.last) if self.last is not None else None,
            "issues": {k: {"count": i.count, "examples": i.examples} for k, i in self.issues.items()},
        }


def _fmt(ts: pd.Timestamp | None, daily: bool | None = None) -> str:
    """A date for daily bars, date and time for intraday ones (``daily=None``: guess from ``ts``)."""
    if ts is None:
        return ""
    t = pd.Timestamp(ts)
    if daily is None:
        daily = t == t.normalize()
    return t.strftime("%Y-%m-%d") if daily else t.strftime("%Y-%m-%d %H:%M")


def _examples(index: pd.Index, mask: np.ndarray | None = None, daily: bool | None = None) -> list[str]:
    sel = index if mask is None else index[mask]
    return [_fmt(t, daily) for t in sel[:MAX_EXAMPLES]]


def _is_close_only(bars: pd.DataFrame) -> bool:
    return not all(c in bars.columns for c in ("open", "high", "low"))


def _invalid_masks(bars: pd.DataFrame) -> dict[str, np.ndarray]:
    """Row masks of the invalid-row kinds (a row can be in several)."""
    prices = [c for c in ("open", "high", "low", "close") if c in bars.columns]
    cols = prices + (["volume"] if "volume" in bars.columns else [])
    values = bars[cols].to_numpy(dtype=np.float64)
    finite = np.isfinite(values)
    masks: dict[str, np.ndarray] = {"nan_or_inf": ~finite.all(axis=1)}
    p = bars[prices].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        masks["non_positive_price"] = np.asarray((p <= 0).any(axis=1))
        if not _is_close_only(bars):
            o, h, lo, c = (bars[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close"))
            masks["high_below_low"] = np.asarray(h < lo)
            masks["open_close_outside_range"] = np.asarray(h >= lo) & ((o > h) | (o < lo) | (c > h) | (c < lo))
        if "volume" in bars.columns:
            masks["negative_volume"] = np.asarray(bars["volume"].to_numpy(dtype=np.float64) < 0)
        huge = np.isfinite(p) & (p > MAX_PRICE)
        if "volume" in bars.columns:
            vol = bars["volume"].to_numpy(dtype=np.float64)
            huge = huge | (np.isfinite(vol) & (vol > MAX_VOLUME))[:, None]
        masks["implausible_value"] = np.asarray(huge.any(axis=1))
    return masks


def validate(
    bars: pd.DataFrame,
    *,
    symbol: str,
    timeframe: str,
    calendar: MarketCalendar | str | None = "NYSE",
    jump_threshold: float = 0.35,
) -> Report:
    """Check ``bars`` (canonical format, possibly dirty) and report every issue found.

    ``calendar=None`` skips the calendar checks (missing bars, off-calendar bars).
    Calendar and jump checks look at the valid rows only, deduplicated and sorted, so
    they say the same before and after :func:`fix`.
    """
    daily = parse_timeframe(timeframe) >= pd.Timedelta(days=1)
    cal = MarketCalendar(calendar) if isinstance(calendar, str) else calendar
    idx = pd.DatetimeIndex(bars.index)
    report = Report(
        symbol=symbol,
        timeframe=timeframe,
        calendar=cal.name if cal is not None else None,
        rows=len(bars),
        first=idx.min() if len(idx) else None,
        last=idx.max() if len(idx) else None,
        close_only=_is_close_only(bars),
        jump_threshold=jump_threshold,
    )
    if len(bars) == 0:
        return report

    def add(kind: str, count: int, examples: list[str]) -> None:
        if count:
            report.issues[kind] = Issue(kind, int(count), examples)

    dup = idx.duplicated(keep="first")
    add("duplicate_timestamps", dup.sum(), _examples(idx, dup, daily))
    ns = idx.asi8
    back = np.zeros(len(idx), dtype=bool)
    back[1:] = ns[1:] < ns[:-1]
    add("unsorted", back.sum(), _examples(idx, back, daily))
    masks = _invalid_masks(bars)
    for kind in ("nan_or_inf", "non_positive_price", "high_below_low", "open_close_outside_range", "negative_volume",
                 "implausible_value"):
        m = masks.get(kind)
        if m is not None:
            add(kind, m.sum(), _examples(idx, m, daily))

    invalid = np.zeros(len(bars), dtype=bool)
    for m in masks.values():
        invalid |= m
    good = bars.loc[~invalid]
    good = good[~good.index.duplicated(keep="last")].sort_index(kind="stable")
    if len(good) == 0:
        return report

    if cal is not None:
        have = MarketCalendar.bucket(pd.DatetimeIndex(good.index), timeframe).unique()
        expected = cal.expected_bar_times(good.index[0], good.index[-1], timeframe)
        missing = expected.difference(have)
        add("missing_bars", len(missing), _examples(missing, None, daily))
        off = have.difference(expected)
        add("off_calendar", len(off), _examples(off, None, daily))

    close = good["close"].to_numpy(dtype=np.float64)
    if len(close) > 1:
        ret = close[1:] / close[:-1] - 1.0
        jump = np.abs(ret) > jump_threshold
        where = good.index[1:][jump]
        add("jumps", int(jump.sum()), [f"{_fmt(t, daily)} ({r:+.0%})" for t, r in zip(where[:MAX_EXAMPLES], ret[jump], strict=False)])
    return report


def fix(bars: pd.DataFrame, report: Report | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Repair the safe issues; return ``(fixed_bars, changes)`` with one line per change.

    Order matters: invalid rows are dropped first, so when a timestamp appears twice the
    newest *valid* row wins; then rows are sorted (stable) and duplicates dropped
    keeping the last. Nothing is filled or invented; gaps and jumps stay as they are.
    ``report`` (from :func:`validate`) is optional: the masks are recomputed here so a
    stale report can never make fix() drop the wrong rows.
    """
    changes: list[str] = []
    out = bars
    masks = _invalid_masks(out)
    invalid = np.zeros(len(out), dtype=bool)
    for kind, m in masks.items():
        if m.any():
            changes.append(f"dropped {int(m.sum())} row(s): {ISSUE_KINDS[kind][0]}")
        invalid |= m
    if invalid.any():
        out = out.loc[~invalid]
        if sum(int(m.sum()) for m in masks.values()) != int(invalid.sum()):
            changes.append(f"({int(invalid.sum())} distinct invalid row(s) dropped in total)")
    idx = pd.DatetimeIndex(out.index)
    if not idx.is_monotonic_increasing:
        moved = int((idx.asi8[1:] < idx.asi8[:-1]).sum())
        out = out.sort_index(kind="stable")
        changes.append(f"sorted by timestamp ({moved} row(s) were out of order)")
    dup = out.index.duplicated(keep="last")
    if dup.any():
        out = out.loc[~dup]
        changes.append(f"dropped {int(dup.sum())} duplicate timestamp row(s), kept the last of each")
    if out is bars:
        out = bars.copy()
    return out, changes


# Bar spacings a file can have: our timeframes plus neighbours we do not store, so that
# weekly data is not mistaken for daily nor seconds for minutes.
_SPACINGS: dict[str, pd.Timedelta] = {
    "1s": pd.Timedelta(seconds=1),
    **{k: pd.Timedelta(v) for k, v in TIMEFRAMES.items()},
    "1w": pd.Timedelta(days=7),
    "1mo": pd.Timedelta(days=30),
}


def spacing_timeframe(index: pd.Index) -> tuple[str, pd.Timedelta] | None:
    """``(nearest timeframe, median spacing)`` of the distinct timestamps; None below 3 of them.

    The median ignores weekends, holidays and overnight gaps as long as most neighbouring
    bars are one bar apart; "nearest" is on a log scale (1h data is nearer 1h than 30m).
    """
    idx = pd.DatetimeIndex(index).unique().sort_values()
    if len(idx) < 3:
        return None
    median = pd.Timedelta(np.median(np.diff(idx.as_unit("ns").asi8)), unit="ns")
    if median <= pd.Timedelta(0):
        return None
    nearest = min(_SPACINGS, key=lambda k: abs(np.log(median / _SPACINGS[k])))
    return nearest, median


def check_spacing(bars: pd.DataFrame, *, timeframe: str, source: str) -> None:
    """Refuse bars whose median spacing says they are another timeframe than ``timeframe``.

    Merging hourly FX into a daily series (or daily into 1m) corrupts it for good.
    """
    parse_timeframe(timeframe)
    found = spacing_timeframe(bars.index)
    if found is None or found[0] == timeframe:
        return
    nearest, median = found
    raise DataError(f"{source}: bars are {_fmt_span(median)} apart (median), which looks like {nearest} data, "
                    f"not --timeframe {timeframe}; check the file and --timeframe")


def _fmt_span(td: pd.Timedelta) -> str:
    secs = td.total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if secs >= size:
            n = secs / size
            return f"{n:g} {unit}{'s' if n != 1 else ''}"
    return f"{secs:g} seconds"
