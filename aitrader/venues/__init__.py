"""Venues, one folder each (NautilusTrader's ``adapters/<venue>/``): a venue's data provider
(``data.py``) and its execution adapter (``execution.py``) side by side, speaking only the
types and protocols of :mod:`aitrader.core`. SDK enums are parsed in ``parse.py``; SDK errors
become :class:`~aitrader.core.errors.TemporaryBrokerError` / ``PermanentBrokerError`` where
they enter. ``paper`` has no data side (it fills against the bars pushed to it); ``replay``
has no execution side (it replays the home's store)."""
