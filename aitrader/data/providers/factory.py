"""Build the configured data provider by name."""

from __future__ import annotations

from aitrader.config import Secrets, Settings
from aitrader.data.providers.base import DataProvider
from aitrader.data.providers.replay import ReplayProvider
from aitrader.data.store import BarStore
from aitrader.errors import ConfigError, ProviderError
from aitrader.paths import Home

PROVIDERS: tuple[str, ...] = ("replay", "alpaca", "ibkr")


def make_provider(
    name: str,
    *,
    settings: Settings,
    secrets: Secrets | None = None,
    home: Home,
) -> DataProvider:
    """``"replay"`` (the home's Parquet store), ``"alpaca"`` or ``"ibkr"``.

    Vendor SDK modules are imported only when asked for, so replay never needs them.
    ``secrets`` defaults to :meth:`Secrets.from_env`.
    """
    key = (name or "").strip().lower()
    if key == "replay":
        return ReplayProvider(store=BarStore(home))
    if key not in PROVIDERS:
        raise ConfigError(f"unknown data provider {name!r}: use one of {', '.join(PROVIDERS)}")
    secrets = secrets if secrets is not None else Secrets.from_env()
    try:
        if key == "alpaca":
            from aitrader.data.providers.alpaca import AlpacaProvider

            return AlpacaProvider.from_env(secrets)  # type: ignore[no-any-return]
        from aitrader.data.providers.ibkr import IBKRProvider

        return IBKRProvider.from_env(secrets, settings)  # type: ignore[no-any-return]
    except ImportError as exc:
        raise ProviderError(f"{key} data provider is not available ({exc})") from None
