"""``aitrader data ...`` end to end (in-process), on the real sample files."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from aitrader.cli import main
from aitrader.core.paths import Home, repo_root
from aitrader.data.store import BarStore
from tests.data.test_cleaner import corrupt


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_sample_is_idempotent(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "data", "sample")
    assert code == 0, err
    assert "VIX 1d: dropped 46 row(s): rows with a missing or infinite value" in out
    store = BarStore(home)
    assert store.list() == [("EURUSD", "1h"), ("GOOG", "1d"), ("SPX", "1d"), ("VIX", "1d")]
    first = {p: store.read(*p) for p in store.list()}
    assert len(first[("VIX", "1d")]) == 1259 and list(first[("VIX", "1d")].columns) == ["close"]
    assert run(capsys, "data", "sample")[0] == 0
    for pair, df in first.items():
        pd.testing.assert_frame_equal(store.read(*pair), df)
    code, out, _ = run(capsys, "data", "list")
    assert code == 0
    assert "GOOG       1d       2148  2004-08-19 00:00:00  2013-03-01 00:00:00  open,high,low,close,volume" in out


def test_import_merges_overlaps(
    home: Home, tmp_path: Path, goog: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.parquet"
    goog.iloc[:1500].to_csv(a)
    goog.iloc[1400:].to_parquet(b)
    code, out, err = run(capsys, "data", "import", str(a), "--symbol", "goog", "--timeframe", "1d")
    assert code == 0, err
    assert "GOOG 1d: 1500 rows in, 1500 added, 0 replaced; store has 1500 rows" in out
    assert "calendar NYSE: OK" in out
    code, out, err = run(capsys, "data", "import", str(b), "--symbol", "GOOG", "--timeframe", "1d")
    assert code == 0, err
    assert "GOOG 1d: 748 rows in, 648 added, 100 replaced; store has 2148 rows 2004-08-19 .. 2013-03-01" in out
    stored = BarStore(home).read("GOOG", "1d")
    pd.testing.assert_frame_equal(stored, goog, check_freq=False, check_index_type=False)


def test_import_close_only_drops_and_reports(
    home: Home, sample_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vix = str(sample_dir / "VIX_1d.csv")
    code, out, err = run(capsys, "data", "import", vix, "--symbol", "VIX", "--timeframe", "1d", "--strict", "--close-only")
    assert code == 2
    assert err == f"aitrader: error: {vix}: invalid rows (nan_or_inf 46); fix the file or import without --strict\n"
    assert not BarStore(home).exists("VIX", "1d")
    code, out, err = run(capsys, "data", "import", vix, "--symbol", "VIX", "--timeframe", "1d", "--close-only")
    assert code == 0, err
    assert "nan_or_inf: 46" in out and "fixed: dropped 46 row(s)" in out
    assert "1259 added" in out


def test_clean_reports_and_fix_keeps_backup(
    home: Home, goog: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    store = BarStore(home)
    store.write("SPX", "1d", goog.iloc[:30])  # a clean neighbour that --symbol must leave alone
    bad, _ = corrupt(goog)
    path = store.path("GOOG", "1d")
    bad.to_parquet(path)  # bypass the store: it would sort and de-duplicate
    original = path.read_bytes()

    code, out, _ = run(capsys, "data", "clean", "--symbol", "GOOG")
    assert code == 1
    assert "duplicate_timestamps: 1" in out and "unsorted: 2" in out and "high_below_low: 1" in out
    assert "negative_volume: 1" in out and "jumps: 1" in out and "missing_bars: 2" in out
    assert path.read_bytes() == original  # report only without --fix

    code, out, _ = run(capsys, "data", "clean", "--symbol", "GOOG", "--fix")
    assert code == 1  # gaps and the jump remain: they are reported, never "fixed"
    backups = list((store.root / "backup").glob("GOOG_1d.*.parquet"))
    assert len(backups) == 1 and backups[0].read_bytes() == original
    assert f"backup of the original: {backups[0]}" in out
    fixed = store.read("GOOG", "1d")
    assert len(fixed) == 58 and fixed.index.is_monotonic_increasing
    assert store.list() == [("GOOG", "1d"), ("SPX", "1d")]  # the backup is not a stored series
    assert "after fix: GOOG 1d: 58 rows" in out

    code, out, _ = run(capsys, "data", "clean", "--symbol", "GOOG")
    assert code == 1
    assert "missing_bars: 2" in out and "jumps: 1" in out and "[fixable]" not in out
    code, out, _ = run(capsys, "data", "clean", "--symbol", "GOOG", "--jump-threshold", "0.9")
    assert "jumps" not in out
    code, out, _ = run(capsys, "data", "clean", "--symbol", "SPX")
    assert code == 0 and "SPX 1d: 30 rows" in out and ": OK" in out


def test_clean_uses_per_symbol_calendar(home: Home, eurusd: pd.DataFrame, capsys: pytest.CaptureFixture[str]) -> None:
    BarStore(home).write("EURUSD", "1h", eurusd)
    code, out, _ = run(capsys, "data", "clean")
    assert "calendar 24/5" in out and "off_calendar: 2" in out
    code, out, _ = run(capsys, "data", "clean", "--calendar", "24/7")
    assert "calendar 24/7" in out and "missing_bars" in out  # weekends count as missing around the clock


class FakeProvider:
    name = "fake"

    def __init__(self, bars: dict[str, pd.DataFrame]) -> None:
        self.bars = bars
        self.calls: list[tuple[str, str, pd.Timestamp, pd.Timestamp | None]] = []

    def get_bars(self, symbol: str, timeframe: str, start: pd.Timestamp, end: pd.Timestamp | None = None) -> pd.DataFrame:
        self.calls.append((symbol, timeframe, start, end))
        df = self.bars[symbol]
        return df.loc[start:end] if end is not None else df.loc[start:]


def test_download_merges_into_store(
    home: Home, goog: pd.DataFrame, spx: pd.DataFrame, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeProvider({"GOOG": goog, "SPX": spx})
    monkeypatch.setattr("aitrader.workspace.Workspace.provider", lambda self, name=None, **kw: fake)
    BarStore(home).write("GOOG", "1d", goog.loc["2012-12-01":"2012-12-31"])
    code, out, err = run(
        capsys, "data", "download", "--provider", "alpaca", "--symbols", "GOOG,spx,GOOG",
        "--timeframe", "1d", "--start", "2012-12-01", "--end", "2013-01-31",
    )
    assert code == 0, err
    assert [c[0] for c in fake.calls] == ["GOOG", "SPX"]
    assert fake.calls[0][2:] == (pd.Timestamp("2012-12-01"), pd.Timestamp("2013-01-31"))
    assert "GOOG 1d: 41 rows in, 21 added, 20 replaced; store has 41 rows" in out
    assert len(BarStore(home).read("SPX", "1d")) == 41


def test_download_from_alpaca_fake(home: Home, goog: pd.DataFrame, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    fakes = pytest.importorskip("tests.fakes.alpaca_fake")
    fake = fakes.AlpacaFake(api_key="k", secret_key="s", page_size=50)
    fake.load_bars("GOOG", goog)
    with fake:
        for k, v in {"ALPACA_API_KEY": "k", "ALPACA_SECRET_KEY": "s", "ALPACA_DATA_URL": fake.url}.items():
            monkeypatch.setenv(k, v)
        code, out, err = run(
            capsys, "data", "download", "--provider", "alpaca", "--symbols", "GOOG",
            "--timeframe", "1d", "--start", "2012-01-01", "--end", "2012-12-31",
        )
    assert code == 0, err
    stored = BarStore(home).read("GOOG", "1d")
    assert len(stored) == 250  # NYSE sessions of 2012 (Sandy closed two days)
    assert stored["close"].iloc[-1] == goog.loc["2012-12-31", "close"]


def test_tickers(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "data", "tickers", "tech", "--set", "aapl,msft")[1] == "tech: AAPL,MSFT\n"
    assert run(capsys, "data", "tickers")[1] == "sample: GOOG,SPX,VIX,EURUSD\ntech: AAPL,MSFT\n"


@pytest.fixture()
def env_home(home: Home) -> Iterator[dict[str, str]]:
    yield {**os.environ, "AITRADER_HOME": str(home.root)}


def test_scripts_run_from_repo_root(home: Home, env_home: dict[str, str]) -> None:
    root = repo_root()
    gen = subprocess.run(
        [sys.executable, "scripts/generate_historical_data.py", "--synthetic", "500", "--symbol", "SYN"],
        cwd=root, env=env_home, capture_output=True, text=True, timeout=120,
    )
    assert gen.returncode == 0, gen.stderr
    assert "SYN 1m: 500 synthetic bars" in gen.stdout
    clean = subprocess.run(
        [sys.executable, "scripts/clean_historical_data.py", "--symbol", "SYN", "--calendar", "24/7"],
        cwd=root, env=env_home, capture_output=True, text=True, timeout=120,
    )
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "SYN 1m: 500 rows" in clean.stdout and ": OK" in clean.stdout
    assert len(BarStore(home).read("SYN", "1m")) == 500


def test_import_sample_subset(home: Home) -> None:
    from aitrader.core.errors import DataError
    from aitrader.data.sample import import_sample

    lines: list[str] = []
    assert import_sample(BarStore(home), symbols=["vix"], report=lines.append) == [("VIX", "1d")]
    assert lines == ["VIX 1d: dropped 46 row(s): rows with a missing or infinite value"]
    assert BarStore(home).list() == [("VIX", "1d")]
    with pytest.raises(DataError, match="not in the sample set: MSFT"):
        import_sample(BarStore(home), symbols=["MSFT"])


# --- issue 11 item 4: bad input that was accepted ---------------------------------------------------


def _err(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, _, err = run(capsys, *argv)
    lines = err.strip().splitlines()
    assert code != 0 and len(lines) == 1 and "internal error" not in lines[0] and "Traceback" not in err, err
    return lines[0]


def test_import_refuses_hourly_file_as_daily(
    home: Home, sample_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "data", "sample", "--symbols", "GOOG")
    before = BarStore(home).path("GOOG", "1d").read_bytes()
    line = _err(capsys, "data", "import", str(sample_dir / "EURUSD_1h.csv"), "--symbol", "GOOG", "--timeframe", "1d")
    assert "bars are 1 hour apart (median), which looks like 1h data, not --timeframe 1d" in line
    assert BarStore(home).path("GOOG", "1d").read_bytes() == before
    assert BarStore(home).list() == [("GOOG", "1d")]


def test_import_refuses_a_price_level_jump(
    home: Home, tmp_path: Path, eurusd: pd.DataFrame, goog: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "data", "sample", "--symbols", "GOOG")
    before = BarStore(home).path("GOOG", "1d").read_bytes()
    daily = eurusd.resample("1D").agg({"open": "first", "high": "max", "low": "min", "close": "last",
                                      "volume": "sum"}).dropna()
    daily.to_csv(tmp_path / "eur_d.csv")
    line = _err(capsys, "data", "import", str(tmp_path / "eur_d.csv"), "--symbol", "GOOG", "--timeframe", "1d")
    assert "GOOG 1d: the new closes are 0.00133x the stored ones (next to each other" in line
    # Overlapping bars at a tenth of the price (an unadjusted 10:1 split): refused too.
    tenth = goog.tail(30).copy()
    tenth[["open", "high", "low", "close"]] /= 20
    tenth.to_csv(tmp_path / "split.csv")
    line = _err(capsys, "data", "import", str(tmp_path / "split.csv"), "--symbol", "GOOG", "--timeframe", "1d")
    assert "the new closes are 0.05x the stored ones (median over 30 shared bars" in line
    assert BarStore(home).path("GOOG", "1d").read_bytes() == before
    # Same level merges; --replace overwrites on purpose.
    goog.tail(30).to_csv(tmp_path / "same.csv")
    assert run(capsys, "data", "import", str(tmp_path / "same.csv"), "--symbol", "GOOG", "--timeframe", "1d")[0] == 0
    code, out, err = run(capsys, "data", "import", str(tmp_path / "split.csv"), "--symbol", "GOOG", "--timeframe",
                         "1d", "--replace")
    assert code == 0, err
    assert len(BarStore(home).read("GOOG", "1d")) == 30


HEAD = "timestamp,open,high,low,close,volume\n"


@pytest.mark.parametrize(
    ("rows", "needle"),
    [
        ("1577923200,1,1,1,1,1\n1578009600,1,1,1,1,1\n1578268800,1,1,1,1,1\n",
         "row 1: numeric timestamp '1577923200' is ambiguous"),
        ("2020-01-02,1,1,1,1,1\n2020-01-03,1,1,1,1,1\n2262-05-01,1,1,1,1,1\n",
         "row 3: timestamp '2262-05-01' is outside the supported range"),
        ("2020-01-02,1,1,1,1,1\n9999-12-31,1,1,1,1,1\n", "row 2: timestamp '9999-12-31' is outside"),
        ("2020-01-02,true,1,1,1,1\n2020-01-03,false,1,1,1,1\n", "boolean value in column 'open'"),
        ("2020-01-02,1,1,1,1,1\n2020-01-03,1,1,1,1,1\nsoon,1,1,1,1,1\n", "unparseable timestamp in row 3 ('soon')"),
    ],
)
def test_import_bad_cells_name_the_row(
    home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str], rows: str, needle: str
) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(HEAD + rows)
    line = _err(capsys, "data", "import", str(f), "--symbol", "X", "--timeframe", "1d")
    assert line.startswith("aitrader: error:") and needle in line, line
    assert BarStore(home).list() == []


def test_import_epoch_seconds_and_millis(home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "epoch.csv"
    f.write_text(HEAD + "1577923200,1,1,1,1,1\n1578009600,1,1,1,1,1\n1578268800,1,1,1,1,1\n")
    code, _, err = run(capsys, "data", "import", str(f), "--symbol", "X", "--timeframe", "1d", "--epoch", "s")
    assert code == 0, err
    assert list(BarStore(home).read("X", "1d").index.strftime("%Y-%m-%d")) == ["2020-01-02", "2020-01-03",
                                                                                "2020-01-06"]
    f.write_text(HEAD + "1578355200000,1,1,1,1,1\n1578441600000,1,1,1,1,1\n")
    code, _, err = run(capsys, "data", "import", str(f), "--symbol", "X", "--timeframe", "1d", "--epoch", "ms")
    assert code == 0, err
    assert BarStore(home).read("X", "1d").index[-1] == pd.Timestamp("2020-01-08")


def test_import_drops_implausible_prices(home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "big.csv"
    f.write_text(HEAD + "2020-01-02,1e308,1e308,1e308,1e308,1\n2020-01-03,2,2,2,2,1\n2020-01-06,inf,2,2,2,1\n"
                 "2020-01-07,2,2,2,2,1\n2020-01-08,0,2,0,2,1\n2020-01-09,2,2,2,2,1\n")
    code, out, err = run(capsys, "data", "import", str(f), "--symbol", "X", "--timeframe", "1d")
    assert code == 0, err
    assert "implausible_value: 1 rows with a price above 1e9" in out and "e.g. 2020-01-02" in out
    stored = BarStore(home).read("X", "1d")
    assert list(stored.index.strftime("%Y-%m-%d")) == ["2020-01-03", "2020-01-07", "2020-01-09"]
    assert float(stored["close"].max()) == 2.0
    line = _err(capsys, "data", "import", str(f), "--symbol", "Y", "--timeframe", "1d", "--strict")
    assert "implausible_value 1" in line


@pytest.mark.parametrize("symbol", ["A/../../X", "../X", "A//B", "/ETC", "A/B/C", ".HIDDEN"])
def test_symbols_cannot_escape_the_store(
    home: Home, tmp_path: Path, goog: pd.DataFrame, capsys: pytest.CaptureFixture[str], symbol: str
) -> None:
    goog.tail(30).to_csv(tmp_path / "g.csv")
    line = _err(capsys, "data", "import", str(tmp_path / "g.csv"), "--symbol", symbol, "--timeframe", "1d")
    assert line.startswith(f"aitrader: error: bad symbol {symbol!r}")
    assert list(home.root.rglob("*.parquet")) == []


def test_slash_symbols_round_trip_and_are_listed(
    home: Home, tmp_path: Path, goog: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    goog.tail(30).to_csv(tmp_path / "g.csv")
    code, _, err = run(capsys, "data", "import", str(tmp_path / "g.csv"), "--symbol", "btc/usd", "--timeframe", "1d")
    assert code == 0, err
    store = BarStore(home)
    assert store.path("BTC/USD", "1d") == home.bars / "BTC_USD_1d.parquet"
    assert [p.name for p in home.bars.iterdir()] == ["BTC_USD_1d.parquet"]
    assert store.list() == [("BTC/USD", "1d")]
    code, out, _ = run(capsys, "data", "list")
    assert code == 0 and "BTC/USD    1d         30" in out
