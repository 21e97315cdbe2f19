"""A private event loop on a daemon thread: how the blocking `Client` runs the one async client.

One implementation means the sync and async clients cannot drift; the price is a thread hop per
call and per event, which is small next to a network round trip.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """Runs coroutines on its own loop for callers on any other thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="gptoss-client-loop", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the loop and wait for it; an interrupt while waiting (Ctrl-C) cancels it."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("a blocking gptoss.Client call from its own event loop; use AsyncClient")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # no-op when it already finished; else the RPC must not outlive the caller
            raise

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Schedule `callback` on the loop from any thread, without waiting."""
        self.loop.call_soon_threadsafe(callback)

    def stop(self) -> None:
        """Stop the loop and its thread (idempotent)."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()
