"""n > 1: admit n sequences, run one GenerationStream per choice, interleave their events.

Each choice is its own engine request on the one rendered prompt (vLLM's prefix cache computes
the prefix once), so the DELTA streaming, stop strings, logprobs and aborts of a single stream
apply per choice unchanged. Events carry `choice_index`; each choice ends with its own Done.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from gptoss.v1 import inference_pb2 as pb

from service.errors import invalid_argument
from service.lifecycle import Admission, ServiceState
from service.planner import GenerationPlan, choice_plans

StreamFactory = Callable[[GenerationPlan], AsyncIterator[pb.GenerateResponse]]
_END = object()


async def admit(state: ServiceState, caller: str, n: int) -> list[Admission]:
    """n slots of the concurrency limit, all or none (a refusal frees those already taken)."""
    if n > state.max_concurrent_requests:
        raise invalid_argument(
            f"n ({n}) exceeds this server's concurrency limit ({state.max_concurrent_requests})", "n"
        )
    taken: list[Admission] = []
    try:
        for _ in range(n):
            taken.append(await state.admit(caller))
    except BaseException:
        for admission in taken:
            admission.release()
        raise
    return taken


async def interleave(plan: GenerationPlan, stream: StreamFactory) -> AsyncIterator[pb.GenerateResponse]:
    """The events of every choice as they come, each marked with its choice index."""
    if plan.n == 1:
        async for response in stream(plan):
            yield response
        return
    queue: asyncio.Queue[tuple[int, object]] = asyncio.Queue()

    async def pump(choice: GenerationPlan) -> None:
        try:
            async for response in stream(choice):
                await queue.put((choice.choice, response))
        except BaseException as exc:
            await queue.put((choice.choice, exc))
            raise
        await queue.put((choice.choice, _END))

    tasks = [asyncio.create_task(pump(choice)) for choice in choice_plans(plan)]
    running = len(tasks)
    try:
        while running:
            index, item = await queue.get()
            if item is _END:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                assert isinstance(item, pb.GenerateResponse)
                item.choice_index = index
                yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
