"""The agent: decision engine, rule filters, risk, options selection, the daemon."""
