"""Our own exception hierarchy.

Every error a user can cause (bad data, config, arguments) or a dependency can raise
(broker, data vendor) is converted into one of these where it enters, so the CLI can
print one readable line and exit non-zero instead of a traceback.
"""

from __future__ import annotations


class AitraderError(Exception):
    """Base class: the message is shown to the user as one line."""

    exit_code: int = 2


class ConfigError(AitraderError):
    """Invalid configuration file, key or value."""


class DataError(AitraderError):
    """Malformed, missing or inconsistent market data."""


class ProviderError(AitraderError):
    """A data provider failed (unreachable, refused, bad answer)."""


class ModelError(AitraderError):
    """A model could not be trained, saved, verified or loaded."""


class IntegrityError(ModelError):
    """An artifact's checksum or feature list does not match its manifest."""


class BrokerError(AitraderError):
    """A broker call failed."""


class TemporaryBrokerError(BrokerError):
    """A broker failure worth retrying (timeout, rate limit, disconnect, 5xx)."""


class PermanentBrokerError(BrokerError):
    """A broker rejection that retrying will not fix (insufficient funds, bad symbol, 4xx)."""


class RiskError(AitraderError):
    """The risk checks themselves failed: trading must halt (fail closed)."""


class JournalError(AitraderError):
    """The journal could not be written or read: trading must halt (fail closed)."""


class LockError(AitraderError):
    """Another run holds the lock."""


class LiveTradingRefused(AitraderError):
    """Live trading was asked for without both --live and mode: live."""
