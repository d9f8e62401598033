"""aitrader: an ML-driven trading agent (paper by default)."""

__version__ = "0.1.0"
