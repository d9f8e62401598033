"""Sending alerts through Apprise without ever slowing a tick.

Apprise covers Telegram, Slack, Discord, email, ntfy, generic JSON webhooks and ~100 more
from one URL each (``AITRADER_NOTIFY_URLS``, comma-separated; secrets, never logged).
:meth:`Notifier.submit` only filters, de-duplicates, rate-limits and enqueues; one worker
thread sends, retrying a little. A dead target costs the agent nothing but a log line.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aitrader.ops.alerts import EVENTS, Alert, Level

log = logging.getLogger(__name__)

Sender = Callable[[Alert], bool]


@dataclass(frozen=True)
class NotifyPolicy:
    """Which alerts go out and how often (the ``notify`` settings section, resolved)."""

    events: frozenset[str] = frozenset(EVENTS)
    min_level: Level = Level.INFO
    levels: dict[str, Level] = field(default_factory=dict)  # per-event overrides of EVENTS' defaults
    per_minute: int = 20
    dedup_seconds: float = 300.0
    retries: int = 2
    retry_backoff: float = 0.5
    queue_size: int = 1000

    def wants(self, alert: Alert) -> bool:
        level = self.levels.get(alert.event, alert.level)
        return alert.event in self.events and level >= self.min_level


def apprise_sender(urls: Sequence[str], *, timeout: float = 10.0) -> Sender:
    """A sender over Apprise; each call notifies every target once and says whether all took it."""
    import apprise

    logging.getLogger("apprise").setLevel(logging.ERROR)  # its debug lines can carry target URLs
    apobj = apprise.Apprise()
    for url in urls:
        if not apobj.add(url):
            raise ValueError("AITRADER_NOTIFY_URLS: an entry is not a valid Apprise URL")
    types = {Level.INFO: apprise.NotifyType.INFO, Level.WARNING: apprise.NotifyType.WARNING,
             Level.CRITICAL: apprise.NotifyType.FAILURE}

    def send(alert: Alert) -> bool:
        return bool(apobj.notify(title=f"aitrader: {alert.title}", body=alert.body or alert.title,
                                 notify_type=types[alert.level]))

    return send


class Notifier:
    """Queue + worker thread in front of a sender; every public method returns at once."""

    def __init__(self, sender: Sender, *, policy: NotifyPolicy | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sender = sender
        self.policy = policy or NotifyPolicy()
        self._clock = clock
        self._queue: queue.Queue[Alert | None] = queue.Queue(maxsize=self.policy.queue_size)
        self._seen: dict[str, float] = {}
        self._sent_times: deque[float] = deque()
        self.sent = 0
        self.failed = 0
        self.dropped = 0  # filtered by rate limit or a full queue
        self._abandon = threading.Event()  # set when close() timed out: send nothing more
        self._worker = threading.Thread(target=self._run, name="aitrader-notify", daemon=True)
        self._worker.start()

    # -- producer side (the agent's threads) ------------------------------------------
    def submit(self, alert: Alert) -> bool:
        """Enqueue ``alert`` if the policy wants it and it is not a repeat; never blocks."""
        if not self.policy.wants(alert):
            return False
        now = self._clock()
        last = self._seen.get(alert.key)
        if last is not None and now - last < self.policy.dedup_seconds:
            return False
        while self._sent_times and now - self._sent_times[0] > 60.0:
            self._sent_times.popleft()
        if len(self._sent_times) >= self.policy.per_minute and alert.level < Level.CRITICAL:
            self.dropped += 1
            return False
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            self.dropped += 1
            return False
        self._seen[alert.key] = now
        self._sent_times.append(now)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (up to ``timeout`` seconds), then stop the worker; whatever is
        still queued after that is dropped, so a dead target never holds up a shutdown."""
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._worker.join(timeout)
        if self._worker.is_alive():
            self._abandon.set()

    # -- worker side ------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            alert = self._queue.get()
            if alert is None or self._abandon.is_set():
                return
            self._send(alert)

    def _send(self, alert: Alert) -> None:
        for attempt in range(self.policy.retries + 1):
            try:
                if self.sender(alert):
                    self.sent += 1
                    return
            except Exception as exc:  # a sender bug or a library error: log the type only
                log.warning("alert %s: sender raised %s", alert.event, type(exc).__name__)
            if self._abandon.is_set():
                return
            if attempt < self.policy.retries:
                time.sleep(self.policy.retry_backoff * (2 ** attempt))
        self.failed += 1
        log.warning("alert %s could not be delivered after %d attempt(s)", alert.event, self.policy.retries + 1)
