"""Settings are frozen after load, derived copies are re-validated, and every cross-field
rule a user could break is refused with one line naming the keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from aitrader.config import Settings, load_settings
from aitrader.config.settings import RiskConfig, TierConfig
from aitrader.core.errors import ConfigError

CLEAN_ENV: dict[str, str] = {}


def load(tmp_path: Path, yaml_text: str) -> Settings:
    cfg = tmp_path / "user.yaml"
    cfg.write_text(yaml_text, encoding="utf-8")
    return load_settings(cfg, environ=CLEAN_ENV)


def refused(tmp_path: Path, yaml_text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, yaml_text)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


# --- frozen -----------------------------------------------------------------------------

@pytest.mark.parametrize("section, key, value", [
    (None, "mode", "live"), (None, "symbols", ["SPX"]), ("risk", "stop_loss_pct", None),
    ("options", "min_dte", 1), ("broker", "initial_cash", 1.0), ("rules", "enabled", False),
])
def test_assignment_raises(section: str | None, key: str, value: object) -> None:
    s = load_settings(environ=CLEAN_ENV)
    target = s if section is None else getattr(s, section)
    before = getattr(target, key)
    with pytest.raises(ValidationError, match="frozen"):
        setattr(target, key, value)
    assert getattr(target, key) == before


def test_nested_walk_forward_is_frozen_too() -> None:
    s = load_settings(environ=CLEAN_ENV)
    with pytest.raises(ValidationError, match="frozen"):
        s.models.walk_forward.n_splits = 9  # type: ignore[misc]


def test_derive_returns_a_validated_copy_and_leaves_the_original() -> None:
    s = load_settings(environ=CLEAN_ENV)
    d = s.derive(risk={"stop_loss_pct": None, "take_profit_pct": 0.5}, rules={"enabled": False},
                 models={"walk_forward": {"n_splits": 3}})
    assert (d.risk.stop_loss_pct, d.risk.take_profit_pct, d.rules.enabled, d.models.walk_forward.n_splits) == \
        (None, 0.5, False, 3)
    # untouched keys of a changed section keep their values (deep merge, not replace)
    assert d.risk.max_daily_loss_pct == s.risk.max_daily_loss_pct and d.models.walk_forward.train_window == 750
    assert (s.risk.stop_loss_pct, s.rules.enabled, s.models.walk_forward.n_splits) == (0.08, True, 4)


@pytest.mark.parametrize("changes, expected", [
    ({"options": {"min_dte": 90}}, "min_dte (90) must be <= max_dte (60)"),
    ({"broker": {"initial_cash": float("inf")}}, "broker.initial_cash: Input should be a finite number"),
    ({"risk": {"max_open_positions": -1}}, "risk.max_open_positions"),
    ({"risk": {"nosuch": 1}}, "unknown key 'risk.nosuch'"),
])
def test_derive_revalidates(changes: dict, expected: str) -> None:
    s = load_settings(environ=CLEAN_ENV)
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        s.derive(**changes)


def test_model_copy_update_is_validated_and_deep_merged() -> None:
    s = load_settings(environ=CLEAN_ENV)
    d = s.model_copy(update={"models": s.models.model_copy(update={"enabled": ["rf"]})})
    assert d.models.enabled == ["rf"] and d.models.hold_band == s.models.hold_band
    with pytest.raises(ConfigError, match="min_dte"):
        s.model_copy(update={"options": {"min_dte": 100, "max_dte": 30}})


def test_overrides_are_validated() -> None:
    assert load_settings(environ=CLEAN_ENV, mode="live").mode == "live"
    with pytest.raises(ConfigError, match="mode"):
        load_settings(environ=CLEAN_ENV, mode="real-money")


# --- cross-field validators ---------------------------------------------------------------

def test_dte_range(tmp_path: Path) -> None:
    assert "options: min_dte (61) must be <= max_dte (60)" in refused(tmp_path, "options:\n  min_dte: 61\n")
    assert load(tmp_path, "options:\n  min_dte: 60\n  max_dte: 60\n").options.min_dte == 60


def test_stop_beyond_take_profit(tmp_path: Path) -> None:
    msg = refused(tmp_path, "risk:\n  stop_loss_pct: 0.3\n  take_profit_pct: 0.2\n")
    assert "risk: stop_loss_pct (0.3) must be <= take_profit_pct (0.2)" in msg
    # either one off, or a symmetric bracket, is fine
    assert load(tmp_path, "risk:\n  stop_loss_pct: 0.3\n  take_profit_pct: null\n").risk.stop_loss_pct == 0.3
    assert load(tmp_path, "risk:\n  stop_loss_pct: 0.1\n  take_profit_pct: 0.1\n").risk.take_profit_pct == 0.1


def _tiers(*rows: tuple[str, float | None]) -> list[dict]:
    return [{"name": n, "max_equity": b, "max_open_positions": 1, "risk_per_trade": 0.01} for n, b in rows]


@pytest.mark.parametrize("rows, expected", [
    ((("b", 5000), ("a", 1000)), "max_equity strictly increasing (got b=5000, a=1000)"),
    ((("a", 1000), ("b", 1000)), "max_equity strictly increasing"),
    ((("top", None), ("a", 1000)), "only the last tier may have max_equity null"),
    ((("a", 1000), ("a", None)), "name a is used twice"),
    ((("a", -5), ("b", None)), "max_equity must be > 0"),
    ((), "at least one tier is required"),
])
def test_tiers_ordered(rows: tuple, expected: str) -> None:
    with pytest.raises(ValidationError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        RiskConfig(tiers=_tiers(*rows))  # type: ignore[arg-type]


def test_default_tiers_pass_and_tier_config_is_frozen() -> None:
    tiers = RiskConfig().tiers
    assert [t.name for t in tiers] == ["micro", "small", "medium", "large", "institutional"]
    t = TierConfig(name="x", max_equity=1.0, max_open_positions=1, risk_per_trade=0.1)
    with pytest.raises(ValidationError):
        t.max_equity = 2.0  # type: ignore[misc]


@pytest.mark.parametrize("yaml_text, expected", [
    ("rules:\n  rsi_overbought: 45\n", "rules.rsi_overbought: Input should be greater than 50"),
    ("rules:\n  rsi_oversold: 55\n", "rules.rsi_oversold: Input should be less than 50"),
    ("models:\n  walk_forward:\n    embargo: 250\n", "embargo (250) must be < test_window (250)"),
    ("models:\n  walk_forward:\n    scheme: rolling\n    train_window: 60\n    test_window: 100\n    embargo: 70\n",
     "embargo (70) must be < train_window (60) for the rolling scheme"),
    ("labels:\n  horizon: 30\nmodels:\n  walk_forward:\n    test_window: 30\n",
     "labels.horizon (30) must be < models.walk_forward.test_window (30)"),
    ("models:\n  sequence_length: 800\n", "sequence_length (800) must be < walk_forward.train_window (750)"),
    ("models:\n  weights:\n    rff: 1.0\n", "weights: unknown model rff"),
    ("models:\n  thresholds:\n    rf: 0.3\n", "thresholds: must be within [0.5, 1]"),
    ("models:\n  weights:\n    rf: -1\n", "weights: must be >= 0 (rf)"),
    ("models:\n  enabled: [rf]\n  weights:\n    rf: 0\n", "every enabled model has weight 0"),
    ("models:\n  enabled: [rf, rf]\n", "a model is listed twice"),
    ("agent:\n  poll_seconds: 600\n", "heartbeat_stale_seconds (300) must be > poll_seconds (600)"),
    ("agent:\n  history_bars: 60\nrules:\n  trend_sma: 200\n", "agent.history_bars (60) must be >= 200"),
    ("dashboard:\n  port: 80\n", "dashboard.port: Input should be greater than or equal to 1024"),
    ("dashboard:\n  port: 70000\n", "dashboard.port: Input should be less than or equal to 65535"),
    ("broker:\n  initial_cash: .nan\n", "broker.initial_cash: Input should be a finite number"),
    ("symbols: []\n", "at least one symbol is required"),
])
def test_cross_field_and_range_rules(tmp_path: Path, yaml_text: str, expected: str) -> None:
    msg = refused(tmp_path, yaml_text)
    assert msg.startswith("config: ") and expected in msg


def test_defaults_and_normalisation(tmp_path: Path) -> None:
    s = load(tmp_path, "symbols: [goog, ' spx', GOOG]\ntimeframes:\n  eurusd: 1h\nlog_level: debug\n")
    assert s.symbols == ["GOOG", "SPX"] and s.timeframes == {"EURUSD": "1h"} and s.log_level == "DEBUG"
    assert s.timeframe_for("eurusd") == "1h"


# --- the config file itself -----------------------------------------------------------------

def test_binary_config_file_is_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "x.yaml"
    cfg.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ConfigError, match=r"x.yaml: not a text \(UTF-8\) YAML file"):
        load_settings(cfg, environ=CLEAN_ENV)
    cfg.write_bytes(b"mode: paper\x00\n")
    with pytest.raises(ConfigError, match="not a text"):
        load_settings(cfg, environ=CLEAN_ENV)


def test_config_directory_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path, environ=CLEAN_ENV)


@pytest.mark.parametrize("address", ["local", "auto", "ray://head:10001"])
def test_compute_addresses_accepted(address: str) -> None:
    s = Settings().derive(compute={"executor": "ray", "address": address})
    assert s.compute.address == address


def test_compute_address_typo_is_refused() -> None:
    with pytest.raises(ConfigError, match="compute.address must be"):
        Settings().derive(compute={"address": "head:10001"})
