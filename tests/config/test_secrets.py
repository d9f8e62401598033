"""Secrets come from the environment only; ``ALPACA_API_SECRET`` is an alias."""

from __future__ import annotations

import pytest

from aitrader.config import Secrets
from aitrader.core.errors import ConfigError


def test_alias_for_the_secret_key() -> None:
    s = Secrets.from_env({"ALPACA_API_KEY": "AKID1234", "ALPACA_API_SECRET": "sekrit-5678"})
    assert (s.alpaca_api_key, s.alpaca_secret_key) == ("AKID1234", "sekrit-5678")
    same = Secrets.from_env({"ALPACA_SECRET_KEY": "sekrit-5678", "ALPACA_API_SECRET": "sekrit-5678"})
    assert same.alpaca_secret_key == "sekrit-5678"


def test_alias_and_name_disagreeing_is_refused_without_echoing_values() -> None:
    with pytest.raises(ConfigError) as info:
        Secrets.from_env({"ALPACA_SECRET_KEY": "one-secret", "ALPACA_API_SECRET": "other-secret"})
    msg = str(info.value)
    assert "ALPACA_SECRET_KEY" in msg and "ALPACA_API_SECRET" in msg
    assert "one-secret" not in msg and "other-secret" not in msg


def test_repr_never_shows_keys() -> None:
    s = Secrets.from_env({"ALPACA_API_KEY": "AKID1234", "ALPACA_SECRET_KEY": "sekrit-5678"})
    assert "AKID1234" not in repr(s) and "sekrit-5678" not in str(s)
