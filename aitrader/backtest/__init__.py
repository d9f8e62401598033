"""Backtesting on the agent's own decision path (see :mod:`aitrader.backtest.engine`)."""

from aitrader.backtest.engine import BacktestResult, run_backtest
from aitrader.backtest.metrics import compute_metrics

__all__ = ["BacktestResult", "compute_metrics", "run_backtest"]
