"""SIGKILL the agent at random moments of a replay, restart it, and compare with a clean run.

Checks, after at least 10 kills: no duplicate orders, the journal's positions equal the
broker's, the equity curve has every bar exactly once, and the final state (orders,
fills, equity) equals an uninterrupted run's.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from aitrader.core.paths import Home
from aitrader.data.sample import import_sample
from aitrader.data.store import BarStore

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SPAN = ("2008-01-01", "2012-12-31")


def _cmd(home: Path) -> list[str]:
    return [
        sys.executable, "-m", "aitrader", "--home", str(home), "--log-level", "ERROR",
        "run", "--strategy", "sma_cross", "--symbols", "GOOG", "--feed", "replay", "--broker", "paper",
        "--start", SPAN[0], "--until", SPAN[1],
    ]


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"AITRADER_HOME": str(home), "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"})
    return env


def _q(path: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _state(home: Path) -> dict[str, object]:
    j = home / "journal.sqlite"
    orders = _q(j, "select client_order_id, side, quantity, status from orders order by client_order_id")
    fills = _q(j, "select client_order_id, side, quantity, price from fills order by client_order_id, ts")
    equity = _q(j, "select ts, equity from equity order by id")
    by_ts: dict[str, float] = {}
    for ts, eq in equity:
        by_ts[ts] = eq  # a re-run bar rewrites its row; the last write is the state
    journal_pos: dict[str, float] = {}
    for _coid, side, qty, _px in fills:
        journal_pos["GOOG"] = journal_pos.get("GOOG", 0.0) + (qty if side == "buy" else -qty)
    broker_pos = {s: q for s, q in _q(j, "select symbol, quantity from paper_positions") if q}
    return {
        "orders": orders,
        "fills": fills,
        "equity": by_ts,
        "equity_rows": [ts for ts, _ in equity],
        "journal_pos": {k: v for k, v in journal_pos.items() if v},
        "broker_pos": broker_pos,
    }


def _cursor(home: Path) -> str | None:
    db = home / "journal.sqlite"
    if not db.exists():
        return None
    try:
        rows = _q(db, "select value from state where key='cursor'")
    except sqlite3.Error:
        return None
    return json.loads(rows[0][0]) if rows else None


def _progress(start: str | None, now: str | None) -> int:
    """Bars processed between two cursor values (business days: GOOG daily bars)."""
    if now is None:
        return 0
    first = pd.Timestamp(start) if start else pd.Timestamp(SPAN[0])
    return len(pd.bdate_range(first, pd.Timestamp(now))) - 1


@pytest.fixture()
def two_homes(tmp_path: Path) -> tuple[Path, Path]:
    homes = []
    for name in ("clean", "killed"):
        h = Home.resolve(tmp_path / name).ensure()
        import_sample(BarStore(h), symbols=["GOOG"])
        homes.append(h.root)
    return homes[0], homes[1]


def test_sigkill_restarts_match_uninterrupted_run(two_homes: tuple[Path, Path]) -> None:
    clean, killed = two_homes
    ref = subprocess.run(_cmd(clean), env=_env(clean), capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-2000:]

    rng = random.Random(int(os.environ.get("AITRADER_CRASH_SEED", "1234")))
    kills = 0
    for _attempt in range(60):
        proc = subprocess.Popen(_cmd(killed), env=_env(killed), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if kills < 12:
            # Kill after a random number of further bars (so every kill lands in the replay,
            # however fast the machine), a random few ms into the next tick.
            start = _cursor(killed)
            target = rng.randint(15, 90)
            while proc.poll() is None and _progress(start, _cursor(killed)) < target:
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.02))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                kills += 1
                continue
        _out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()[-2000:]
        break
    else:
        pytest.fail("killed run never finished")
    assert kills >= 10, f"only {kills} kills landed; make the replay longer"

    a, b = _state(clean), _state(killed)
    assert len(a["orders"]) > 10  # the scenario really trades
    # no duplicate orders (client ids are unique in the journal and equal the clean run's)
    ids = [o[0] for o in b["orders"]]
    assert len(ids) == len(set(ids))
    assert b["orders"] == a["orders"]
    assert b["fills"] == a["fills"]
    # journal positions equal the broker's
    assert b["journal_pos"] == b["broker_pos"]
    assert a["journal_pos"] == a["broker_pos"] == b["broker_pos"]
    # equity curve continuous: every bar exactly once, same values, no gaps
    assert list(b["equity"]) == list(a["equity"])
    assert b["equity"] == pytest.approx(a["equity"], rel=1e-12)
    assert len(b["equity_rows"]) == len(set(b["equity_rows"]))
