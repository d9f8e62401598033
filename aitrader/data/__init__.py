"""Market data: the canonical bar format, the Parquet store, providers and the cleaner."""
