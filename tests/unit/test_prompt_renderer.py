"""PromptRenderer: inline below the size threshold, worker processes above it, inline when workers can't start."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import pytest

from service import prompt_renderer
from service.harmony import ChatMessage, ChatRequest, render_prompt
from service.prompt_renderer import INLINE_BELOW_CHARS, PromptRenderer

LONG = ChatRequest(messages=[ChatMessage("user", "word " * INLINE_BELOW_CHARS)])
SHORT = ChatRequest(messages=[ChatMessage("user", "Hi")])


def test_short_prompts_render_inline_and_long_ones_in_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    async def run() -> None:
        renderer = PromptRenderer(workers=1)
        await renderer.start()
        try:
            submitted: list[object] = []
            pool = renderer._pool
            assert pool is not None
            original = pool.submit
            monkeypatch.setattr(pool, "submit", lambda *a, **k: submitted.append(a[1]) or original(*a, **k))
            assert await renderer.render(SHORT) == render_prompt(SHORT)
            assert submitted == []
            assert await renderer.render(LONG) == render_prompt(LONG)
            assert submitted == [LONG]
        finally:
            renderer.close()

    asyncio.run(run())


def test_workers_that_cannot_start_leave_rendering_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    def dying_pool(workers: int) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(workers, mp_context=context, initializer=os._exit, initargs=(3,))

    monkeypatch.setattr(prompt_renderer, "_new_pool", dying_pool)

    async def run() -> None:
        renderer = PromptRenderer(workers=1)
        await renderer.start()
        assert renderer._pool is None
        assert await renderer.render(LONG) == render_prompt(LONG)

    asyncio.run(run())
