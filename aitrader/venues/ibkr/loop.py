"""A private asyncio loop thread for ``ib_async``.

``ib_async``'s sync API runs the *calling* thread's event loop only while a call is in
progress, and its socket belongs to the loop of the thread that connected. The agent
may call the broker from a scheduler worker thread and the data provider from another,
so instead each IB connection lives on its own daemon thread running its loop forever:
callers submit coroutines or plain functions with :meth:`IBLoop.run`, which waits at
most ``timeout`` seconds. With the loop always running, TWS's pushes (fills, status,
a dropped socket) are processed as they arrive, not at the next call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class IBLoop:
    """One event loop on one daemon thread; :meth:`run` executes work on it."""

    def __init__(self, name: str = "ibkr-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self.loop.is_closed()

    def run(self, work: Callable[[], T] | Callable[[], Awaitable[T]], *, timeout: float | None) -> T:
        """Run ``work()`` on the loop thread (awaiting it if it returns an awaitable) and
        return its result; raises ``TimeoutError`` after ``timeout`` seconds (the work is
        cancelled) and re-raises whatever the work raised."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("IBLoop.run called from its own loop thread")

        async def call() -> Any:
            result = work()
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                return await asyncio.wait_for(result, timeout)
            return result

        fut = asyncio.run_coroutine_threadsafe(call(), self.loop)
        try:
            # a little slack: the inner wait_for fires first and cancels cleanly
            return fut.result(None if timeout is None else timeout + 1.0)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise TimeoutError(f"no answer within {timeout:g}s") from None
        except concurrent.futures.CancelledError:
            raise ConnectionError("request cancelled") from None

    def stop(self) -> None:
        """Stop the loop and its thread (idempotent)."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()
