"""Causal features: indicators, Fibonacci, multi-timeframe, market context, sequence windows.

Everyone builds features through :func:`build_features` (training, backtest and live).
"""

from aitrader.features.context import MarketContext, context_features, load_context
from aitrader.features.feature_engineering import (
    FEATURE_COLUMNS,
    build_features,
    feature_columns,
    model_feature_columns,
)
from aitrader.features.sequence_utils import last_window, make_windows

__all__ = [
    "FEATURE_COLUMNS",
    "MarketContext",
    "build_features",
    "context_features",
    "feature_columns",
    "last_window",
    "load_context",
    "make_windows",
    "model_feature_columns",
]
