"""Log IB's messages at the level they deserve.

``ib_async`` logs every IB error code that is not on its short warning list at ERROR,
including normal events: ``Error 202 Order Canceled`` when TWS cancels a bracket's other
leg (one-cancels-other) or confirms our own cancel, and 1101/1102 "connectivity
restored". This filter re-levels those records by :func:`aitrader.venues.ibkr.parse.classify_error`:
informational codes at INFO, temporary ones at WARNING; real order/request problems
stay ERROR. A re-levelled record below the logger's effective level is dropped.
"""

from __future__ import annotations

import logging
import re

from aitrader.venues.ibkr.parse import ErrorKind, classify_error

_CODE = re.compile(r"^(?:Error|Warning) (\d+), reqId")
_CANCELED = re.compile(r"^Canceled order: .*errorCode=202\b", re.DOTALL)
LEVELS = {ErrorKind.INFO: logging.INFO, ErrorKind.TEMPORARY: logging.WARNING}


class IBLogLevels(logging.Filter):
    """Re-levels ``ib_async.wrapper`` / ``ib_async.client`` records by IB error code."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        msg = record.getMessage()
        m = _CODE.match(msg)
        level = None
        if m is not None:
            level = LEVELS.get(classify_error(int(m.group(1))))
        elif _CANCELED.match(msg):
            level = logging.INFO  # the trade ib_async marks cancelled because of a 202
        if level is None or level >= record.levelno:
            return True
        record.levelno, record.levelname = level, logging.getLevelName(level)
        return logging.getLogger(record.name).isEnabledFor(level)


def install() -> None:
    """Attach the filter once to ib_async's loggers (idempotent)."""
    for name in ("ib_async.wrapper", "ib_async.client", "ib_async.ib"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, IBLogLevels) for f in logger.filters):
            logger.addFilter(IBLogLevels())
