"""The read-only Streamlit dashboard.

:mod:`aitrader.dashboard.queries` turns the journal, the model registry, the bar store and
saved backtest reports into DataFrames/dicts (pure, unit-tested); :mod:`.charts` turns those
into plotly figures; ``app.py`` only lays them out. Nothing here can trade: the journal is
opened ``mode=ro`` and no broker adapter is imported.
"""
