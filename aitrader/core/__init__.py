"""The domain, at the bottom of every layer: orders, fills, positions, bars, decisions, intents,
the protocols the layers meet through (broker, data provider, journal, calendar), order-id
rules, errors, the home's paths and atomic writes. It imports nothing else of aitrader."""
