"""Where Harmony rendering runs: on the event loop, or in worker processes.

`openai_harmony` holds the GIL while it renders (~0.4 ms of BPE per 1000 prompt tokens), so on
the gRPC event loop a burst of 256 chat requests serialises ~100 ms of rendering before the last
request reaches the engine, and a thread pool cannot help. With `render_workers > 0`, long
prompts render in a pool of spawn-started processes; the loop only pickles the request and the
token ids. Short prompts stay inline, where a round trip to a worker would cost more than the
render itself. "Long" counts tools too: a few MiB of tool schemas render as slowly as text.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from service.harmony import ChatMessage, ChatRequest, render_prompt
from service.harmony.response_formats import render_with_formats

log = logging.getLogger(__name__)

# Below this much message text (~1000 tokens of English), rendering inline (~0.1-0.4 ms, mostly the
# cached system/developer prefix) is cheaper than a worker round trip (pickle, pipe, wake-up).
INLINE_BELOW_CHARS = 4096
_RESTART_WINDOW_SECONDS = 60


class PromptRenderer:
    """Renders chat requests to prompt token ids, in worker processes when configured."""

    def __init__(self, workers: int, inline_below_chars: int = INLINE_BELOW_CHARS) -> None:
        self._workers = workers
        self._inline_below_chars = inline_below_chars
        self._pool: ProcessPoolExecutor | None = None
        self._last_restart = -float("inf")

    async def start(self) -> None:
        """Start the workers and load the Harmony encoding in each, so no request pays for it.

        A pool that cannot start is logged and left off: rendering inline is slower under bursts
        but correct, which beats a replica that never becomes ready.
        """
        if self._workers <= 0:
            return
        self._pool = _new_pool(self._workers)
        loop = asyncio.get_running_loop()
        warm = ChatRequest(messages=[ChatMessage("user", "warm-up")])
        try:
            await asyncio.gather(
                *(loop.run_in_executor(self._pool, render_prompt, warm) for _ in range(self._workers))
            )
        except Exception:
            log.exception("Harmony render workers failed to start: rendering on the event loop")
            self.close()
            return
        log.info(
            "Harmony rendering in %d worker processes (prompts over %d chars)",
            self._workers,
            self._inline_below_chars,
        )

    async def render(
        self, chat: ChatRequest, size: int | None = None, response_formats: str = ""
    ) -> list[int]:
        """Token ids for `chat`; raises `RenderError` like `render_prompt`.

        `size`: the input size when the caller knows it cheaply (the request's serialized bytes);
        else it is estimated from `chat`, tools included. `response_formats`: Harmony's
        "# Response Formats" section for the developer message ("" = none).
        """
        if self._pool is None or (size if size is not None else input_size(chat)) < self._inline_below_chars:
            return render_with_formats(chat, response_formats)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, render_with_formats, chat, response_formats)
        except BrokenProcessPool:
            # A worker died (OOM killer, signal): replace the pool; this request renders here.
            self._restart()
            return render_with_formats(chat, response_formats)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _restart(self) -> None:
        """A new pool; but a pool that keeps dying is switched off, not respawned per request."""
        self.close()
        now = time.monotonic()
        if now - self._last_restart < _RESTART_WINDOW_SECONDS:
            log.error(
                "Harmony render workers died twice within %ds: rendering on the event loop",
                _RESTART_WINDOW_SECONDS,
            )
            return
        log.error("a Harmony render worker died: restarting the pool")
        self._last_restart = now
        self._pool = _new_pool(self._workers)


def _new_pool(workers: int) -> ProcessPoolExecutor:
    # spawn, never fork: the parent holds gRPC and vLLM threads that a forked child would inherit broken.
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def input_size(chat: ChatRequest) -> int:
    """What rendering has to chew through: message text, and tool names, descriptions and schemas."""
    messages = sum(len(m.content) + len(m.reasoning) + len(m.name) for m in chat.messages)
    calls = sum(len(c.arguments) for m in chat.messages for c in m.tool_calls)
    tools = sum(len(t.name) + len(t.description) + len(json.dumps(t.parameters)) for t in chat.tools)
    return messages + calls + tools
