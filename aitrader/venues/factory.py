"""Build the configured data provider by name."""

from __future__ import annotations

from aitrader.config import Secrets, Settings
from aitrader.core.errors import ConfigError, ProviderError
from aitrader.core.paths import Home
from aitrader.core.protocols import DataProvider
from aitrader.data.store import BarStore
from aitrader.venues.replay.data import ReplayProvider

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
            from aitrader.venues.alpaca.data import AlpacaProvider

            return AlpacaProvider.from_env(secrets)  # type: ignore[no-any-return]
        from aitrader.venues.ibkr.data import IBKRProvider

        return IBKRProvider.from_env(secrets, settings)  # type: ignore[no-any-return]
    except ImportError as exc:
        raise ProviderError(f"{key} data provider is not available ({exc})") from None
