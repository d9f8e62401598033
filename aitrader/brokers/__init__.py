"""Brokers: one protocol (:mod:`aitrader.brokers.base`), one adapter per venue."""
