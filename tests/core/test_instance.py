"""One agent per home: the flock-based HomeLock, a second `run` refused, `status` after a SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aitrader.cli import main
from aitrader.core.instance import AlreadyRunning, HomeLock, holder, pid_alive
from aitrader.core.paths import Home
from aitrader.data.sample import import_sample
from aitrader.data.store import BarStore

HOLD = "import sys, time; from aitrader.core.instance import HomeLock; l = HomeLock.try_acquire(sys.argv[1]); " \
       "print('held', flush=True); time.sleep(120)"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    return env


def _holder_process(home: Home) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(home.root)], stdout=subprocess.PIPE, text=True,
                            env=_env())
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait(timeout=30)


def test_lock_is_exclusive_and_names_the_holder(home: Home) -> None:
    proc = _holder_process(home)
    try:
        assert holder(home.root) == proc.pid
        with pytest.raises(AlreadyRunning, match=f"pid {proc.pid}"):
            HomeLock.try_acquire(home.root)
    finally:
        _kill(proc)
    # SIGKILL released it: the next start takes it at once.
    assert holder(home.root) is None
    with HomeLock.acquire(home.root) as lock:
        assert lock.path.read_text().strip() == str(os.getpid())
    assert holder(home.root) is None
    assert not pid_alive(proc.pid)


def test_second_run_refused_with_one_line(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    import_sample(BarStore(home), symbols=["GOOG"])
    proc = _holder_process(home)
    try:
        capsys.readouterr()
        rc = main(["--home", str(home.root), "run", "--strategy", "sma_cross", "--symbols", "GOOG",
                   "--start", "2012-06-01", "--until", "2012-07-01"])
        err = capsys.readouterr().err.strip().splitlines()
    finally:
        _kill(proc)
    assert rc != 0
    assert len(err) == 1 and err[0].startswith("aitrader: error: another agent"), err
    assert f"pid {proc.pid}" in err[0]
    # The refused run opened no journal.
    assert not Path(home.journal).exists()


def _aitrader(home: Home, *args: str) -> list[str]:
    return [sys.executable, "-m", "aitrader", "--home", str(home.root), "--log-level", "ERROR", *args]


def _wait_for(pred: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_sigkill_then_status_is_stale_and_restart_works(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    import_sample(BarStore(home), symbols=["GOOG"])
    run = ["run", "--strategy", "sma_cross", "--symbols", "GOOG", "--start", "2012-01-01", "--until", "2012-12-31"]
    slow = subprocess.Popen(_aitrader(home, *run, "--speed", "2"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=_env())
    try:
        _wait_for(lambda: holder(home.root) == slow.pid)
        from aitrader.journal.queries import JournalReader

        _wait_for(lambda: (JournalReader(home.journal).heartbeat() or {}).get("state") == "running")
        # While it runs, status says running and a second run is refused at once.
        capsys.readouterr()
        assert main(["--home", str(home.root), "status"]) == 0
        assert "state           running" in capsys.readouterr().out
        t0 = time.monotonic()
        second = subprocess.run(_aitrader(home, *run), capture_output=True, text=True, env=_env(), timeout=120)
        assert second.returncode != 0
        assert f"another agent (pid {slow.pid}) is already running" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1, second.stderr
        assert time.monotonic() - t0 < 60
        os.kill(slow.pid, signal.SIGKILL)
        slow.wait(timeout=30)
    finally:
        if slow.poll() is None:
            _kill(slow)  # type: ignore[arg-type]
    capsys.readouterr()
    assert main(["--home", str(home.root), "status"]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("state           stale"), out
    assert "'running'" in first and " s ago" in first and f"pid {slow.pid} is gone" in first
    capsys.readouterr()
    assert main(["--home", str(home.root), "status", "--json"]) == 0
    assert '"state": "stale"' in capsys.readouterr().out
    # The killed agent does not block the next start.
    again = subprocess.run(_aitrader(home, *run), capture_output=True, text=True, env=_env(), timeout=300)
    assert again.returncode == 0, again.stderr
    capsys.readouterr()
    assert main(["--home", str(home.root), "status"]) == 0
    assert capsys.readouterr().out.startswith("state           stopped")
