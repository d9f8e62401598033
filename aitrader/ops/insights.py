"""Optional daily insights: an LLM's short written analysis of the day's trades and metrics.

Only with an LLM configured (``sentiment.llm.base_url`` and ``.model``, ``insights`` on) and
the key in ``AITRADER_LLM_API_KEY``; the same OpenAI-compatible client path as the LLM news
scorer (:mod:`aitrader.core.llm`). The text is stored once per date in the journal's
``evaluations`` table (re-running a day's report reuses it) and shown on the dashboard's
Daily page. It only recommends: nothing here reads the answer back into any setting, and
the prompt says so. Without a key, or when the endpoint fails, the report is written as
always and a one-line note says why there is no analysis.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd

from aitrader.core.llm import KEY_ENV, api_key, chat, chat_client

log = logging.getLogger(__name__)

MAX_CHARS = 2000  # the stored text is cut here (a runaway answer never floods the journal)
MAX_TRADES = 40
SYSTEM = ("You review one day of an automated trading agent's results for its human operator. Write a short "
          "plain-text analysis (at most 150 words): what happened today, what stands out in the metrics compared "
          "with the week and month, and at most three concrete recommendations. You cannot change any parameter "
          "and nothing you write is applied automatically: recommend, and leave every decision to the operator. "
          "Past results do not predict future returns; never promise any.")


@dataclass(frozen=True)
class Insights:
    """The outcome: ``text`` (None when there is none) and a one-line ``note`` for the report."""

    text: str | None
    model: str | None
    note: str
    new: bool = False  # written by the LLM just now (False: reused, skipped or failed)


def configured(llm: Any) -> bool:
    """Whether daily insights are asked for at all (otherwise the report is exactly as before)."""
    return bool(llm.insights and llm.base_url and llm.model)


def day_trades(closed: pd.DataFrame, fills: pd.DataFrame, *, day: str) -> dict[str, list[dict[str, Any]]]:
    """The day's closed round trips and fills (a bounded number of each), JSON-safe."""
    start = pd.Timestamp(day)
    end = start + pd.Timedelta(days=1)

    def pick(df: pd.DataFrame, col: str, keep: tuple[str, ...]) -> list[dict[str, Any]]:
        if df.empty or col not in df:
            return []
        t = pd.to_datetime(df[col])
        rows = df[(t >= start) & (t < end)][[c for c in keep if c in df]].head(MAX_TRADES)
        return json.loads(rows.to_json(orient="records", date_format="iso"))

    return {"closed_trades": pick(closed, "exit_time", ("symbol", "direction", "entry_time", "exit_time", "quantity",
                                                         "entry_price", "exit_price", "pnl", "return_pct")),
            "fills": pick(fills, "ts", ("ts", "instrument", "side", "quantity", "price", "commission"))}


def prompt(day: str, report: dict[str, dict[str, Any]], trades: dict[str, list[dict[str, Any]]]) -> str:
    """The user message: the day's, week's and month's metrics and the day's trades as JSON."""
    return (f"Date: {day}\nMetrics (day, week, month):\n{json.dumps(report, default=str, sort_keys=True)}\n"
            f"Today's trades:\n{json.dumps(trades, default=str)}")


def daily_insights(llm: Any, *, journal: Any | None, day: str, report: dict[str, dict[str, Any]],
                   trades: dict[str, list[dict[str, Any]]], client: Any = None) -> Insights:
    """The day's analysis: reused from ``journal`` if stored, else asked for and stored (when
    ``journal`` is given); never raises for a missing key or a failing endpoint."""
    model = str(llm.model)
    if journal is not None:
        stored = journal.evaluation(day)
        if stored:
            return Insights(stored["text"], stored["model"], f"insights: stored earlier by {stored['model']}")
    key = api_key()
    if client is None and not key:
        return Insights(None, None, f"insights: skipped: {KEY_ENV} is not set (the report is complete without them)")
    try:
        client = client or chat_client(base_url=str(llm.base_url), api_key=str(key), timeout=llm.timeout_seconds,
                                       max_retries=llm.max_retries)
        text = chat(client, model=model, system=SYSTEM, user=prompt(day, report, trades), max_tokens=400).strip()
    except Exception as exc:  # the SDK's timeout / connection / status errors: the report goes on
        log.warning("daily insights: the LLM endpoint failed: %s", type(exc).__name__)
        return Insights(None, None, f"insights: skipped: the LLM endpoint failed ({type(exc).__name__}); "
                                    "the report is complete without them")
    if not text:
        return Insights(None, None, "insights: skipped: the LLM answered with no text")
    text = text[:MAX_CHARS]
    if journal is not None:
        with journal.transaction():
            journal.record_evaluation(day, model, text)
    return Insights(text, model, f"insights: written by {model} (recommendations only; nothing was changed)",
                    new=True)


__all__ = ["SYSTEM", "Insights", "configured", "daily_insights", "day_trades", "prompt"]
