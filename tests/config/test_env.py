"""``AITRADER_*`` environment variables: unknown names refused with a did-you-mean, lists
comma-separated or JSON, every error names the variable."""

from __future__ import annotations

import pytest

from aitrader.config import Settings, load_settings
from aitrader.config.env import known_variables
from aitrader.core.errors import ConfigError


def refused(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(environ=env)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_single_underscore_is_refused_with_a_did_you_mean() -> None:
    msg = refused({"AITRADER_RISK_MAX_OPEN_POSITIONS": "0"})
    assert msg.startswith("unknown environment variable AITRADER_RISK_MAX_OPEN_POSITIONS; "
                          "did you mean AITRADER_RISK__MAX_OPEN_POSITIONS?")


def test_double_underscore_works_and_deeper_sections_too() -> None:
    s = load_settings(environ={"AITRADER_RISK__MAX_OPEN_POSITIONS": "0",
                               "AITRADER_MODELS__WALK_FORWARD__N_SPLITS": "3",
                               "AITRADER_RULES__ENABLED": "false"})
    assert (s.risk.max_open_positions, s.models.walk_forward.n_splits, s.rules.enabled) == (0, 3, False)


def test_unknown_key_without_a_close_match_still_says_the_form() -> None:
    msg = refused({"AITRADER_ZZZZZZ": "1"})
    assert "unknown environment variable AITRADER_ZZZZZZ" in msg and "did you mean" not in msg
    assert "AITRADER_<SECTION>__<KEY>" in msg


def test_non_settings_variables_are_allowed() -> None:
    env = {"AITRADER_HOME": "/x", "AITRADER_NUMBA_CACHE": "/c", "AITRADER_CRASH_SEED": "7", "AITRADER_CONFIG": "c",
           "AITRADER_NOTIFY_URLS": "https://hooks.example/abc", "AITRADER_INSTALL_DIR": "/i",
           "AITRADER_BENCH_BARS": "10", "AITRADER_DASHBOARD_SHOT": "x.png", "OTHER_THING": "1"}
    assert load_settings(environ=env).symbols == ["GOOG"]
    assert "AITRADER_HOME" in known_variables(Settings) and "AITRADER_RISK__STOP_LOSS_PCT" in known_variables(Settings)


def test_section_needs_a_json_object() -> None:
    msg = refused({"AITRADER_RISK": "garbage"})
    assert msg.startswith("environment variable AITRADER_RISK: expected a JSON object of risk keys")
    assert "AITRADER_RISK__<KEY>" in msg and "got 'garbage'" in msg
    s = load_settings(environ={"AITRADER_RISK": '{"max_open_positions": 2, "stop_loss_pct": null}'})
    assert (s.risk.max_open_positions, s.risk.stop_loss_pct, s.risk.take_profit_pct) == (2, None, 0.2)
    assert "(from AITRADER_RISK)" in refused({"AITRADER_RISK": '{"max_open_positions": -2}'})


@pytest.mark.parametrize("raw, expected", [
    ("GOOG", ["GOOG"]), ("goog, spx", ["GOOG", "SPX"]), ('["AAPL", "MSFT"]', ["AAPL", "MSFT"]),
])
def test_symbols_comma_separated_or_json(raw: str, expected: list[str]) -> None:
    assert load_settings(environ={"AITRADER_SYMBOLS": raw}).symbols == expected


def test_symbols_bad_json_and_empty() -> None:
    assert "AITRADER_SYMBOLS: expected a comma-separated list (A,B) or a JSON list" in refused(
        {"AITRADER_SYMBOLS": "[GOOG"})
    assert "symbols (from AITRADER_SYMBOLS): at least one symbol is required" in refused({"AITRADER_SYMBOLS": " , "})


def test_dicts_as_pairs_or_json_and_tiers_as_json() -> None:
    s = load_settings(environ={"AITRADER_TIMEFRAMES": "eurusd=1h", "AITRADER_DATA__CALENDARS": '{"EURUSD": "24/5"}'})
    assert s.timeframes == {"EURUSD": "1h"} and s.data.calendars == {"EURUSD": "24/5"}
    assert "expected KEY=VALUE pairs" in refused({"AITRADER_TIMEFRAMES": "eurusd"})
    assert "AITRADER_RISK__TIERS: expected a JSON list" in refused({"AITRADER_RISK__TIERS": "micro"})


def test_values_are_validated_and_name_the_variable() -> None:
    msg = refused({"AITRADER_RISK__MAX_OPEN_POSITIONS": "-1"})
    assert msg.startswith("config: risk.max_open_positions (from AITRADER_RISK__MAX_OPEN_POSITIONS): ")
    assert "(from AITRADER_BROKER__INITIAL_CASH)" in refused({"AITRADER_BROKER__INITIAL_CASH": "inf"})
    assert "min_dte (90) must be <= max_dte (60)" in refused({"AITRADER_OPTIONS__MIN_DTE": "90"})


def test_optional_values_accept_none_and_env_beats_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "c.yaml"
    cfg.write_text("risk:\n  stop_loss_pct: 0.05\n", encoding="utf-8")
    assert load_settings(cfg, environ={}).risk.stop_loss_pct == 0.05
    assert load_settings(cfg, environ={"AITRADER_RISK__STOP_LOSS_PCT": "none"}).risk.stop_loss_pct is None
    assert load_settings(cfg, environ={"AITRADER_RISK__STOP_LOSS_PCT": "0.07"}).risk.stop_loss_pct == 0.07


def test_log_level_any_case() -> None:
    assert load_settings(environ={"AITRADER_LOG_LEVEL": "debug"}).log_level == "DEBUG"
    assert "log_level (from AITRADER_LOG_LEVEL)" in refused({"AITRADER_LOG_LEVEL": "garbage"})


def test_derive_does_not_reread_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AITRADER_RISK__STOP_LOSS_PCT", "0.05")
    s = load_settings()
    assert s.risk.stop_loss_pct == 0.05
    assert s.derive(risk={"stop_loss_pct": None}).risk.stop_loss_pct is None
