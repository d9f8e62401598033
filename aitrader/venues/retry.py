"""Retry only temporary broker failures, with exponential backoff."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from aitrader.core.errors import TemporaryBrokerError

P = ParamSpec("P")
T = TypeVar("T")
log = logging.getLogger(__name__)


def retrier(
    *, attempts: int = 4, backoff: float = 0.5, sleep: Callable[[float], None] = time.sleep
) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorate a broker call: retry ``TemporaryBrokerError`` up to ``attempts`` times.

    Permanent errors (and anything else) pass through at once.
    """

    def deco(fn: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            for attempt in range(1, attempts + 1):
                try:
                    return fn(*args, **kwargs)
                except TemporaryBrokerError as exc:
                    if attempt == attempts:
                        raise
                    delay = backoff * (2 ** (attempt - 1))
                    log.warning("%s failed (%s); retry %d/%d in %.2fs", fn.__name__, exc, attempt, attempts - 1, delay)
                    sleep(delay)
            raise AssertionError("unreachable")

        return wrapper

    return deco
