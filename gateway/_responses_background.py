"""Background responses: generated detached from the request that made them, their stream events
written to the store as they come (in small batches), so any replica can poll or replay them and
a cancel on any replica stops them at the next batch."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import Response
from gptoss import GenerateOptions, GptossError

from gateway import _sse
from gateway._errors import GatewayError, internal_error
from gateway._finish import NO_DONE
from gateway._generate import RESPONSES_ROUTE, Generation
from gateway._middleware import CallContext
from gateway._responses_events import ResponsesStream
from gateway.store import TERMINAL, Store, StoreUnavailable

log = logging.getLogger("gateway")
Json = dict[str, Any]
ROUTE = RESPONSES_ROUTE


def output_of(response: Json) -> list[Json]:
    return list(response.get("output") or [])


def failure(machine: ResponsesStream, error: GatewayError) -> Json:
    """The stored end of a response that did not finish: `failed`, with the error that ended it."""
    code = error.code or ("client_closed_request" if error.status == 499 else "server_error")
    return machine.snapshot("failed", {"code": code, "message": error.message})


class Background:
    def __init__(
        self, generation: Generation, store: Store, running: set[str], *, flush_every: float, poll: float
    ) -> None:
        self.generation = generation
        self.store = store
        self.running = running
        self.flush_every = flush_every
        self.poll = poll
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def launch(
        self, machine: ResponsesStream, options: GenerateOptions, call: CallContext, items: list[Json]
    ) -> None:
        response_id = machine.response_id
        self.running.add(response_id)
        task = asyncio.create_task(self._run(machine, options, call, items), name=f"background {response_id}")
        self.tasks[response_id] = task

        def forget(_: asyncio.Task[None]) -> None:
            self.tasks.pop(response_id, None)
            self.running.discard(response_id)

        task.add_done_callback(forget)

    async def _run(
        self, machine: ResponsesStream, options: GenerateOptions, call: CallContext, items: list[Json]
    ) -> None:
        response_id = machine.response_id
        pending = machine.start()
        loop = asyncio.get_running_loop()
        try:
            running = await self.generation._start(options, call, ROUTE, stream=False)
            try:
                flushed = loop.time()
                while (event := await running.next_event()) is not None:
                    self.generation._count(event)
                    pending += machine.on_event(event)
                    if loop.time() - flushed >= self.flush_every:
                        if await self.store.responses.status(response_id) in ("cancelled", None):
                            return  # cancelled or deleted, maybe on another replica
                        await self.store.responses.add_events(response_id, pending, machine.snapshot())
                        pending, flushed = [], loop.time()
            finally:
                await running.close()
            if machine.final is None:
                raise GatewayError(502, NO_DONE, type="server_error")
            await self.store.responses.add_events(response_id, pending, None)
            await self.store.responses.finish(
                machine.final, conversation_items_to_add=items + output_of(machine.final)
            )
            return
        except asyncio.CancelledError:  # a cancel (status already final: no-op) or a shutdown
            await _quietly(self.store.responses.add_events(response_id, pending, None))
            stopped = GatewayError(503, "the gateway shut down before the response finished", code="shutdown")
            await _quietly(self.store.responses.finish(failure(machine, stopped)))
            raise
        except GptossError as exc:
            error = self.generation.http_error(exc, ROUTE)
        except GatewayError as exc:
            error = exc
        except StoreUnavailable:
            log.warning("background response %s lost its store; the stale sweep will end it", response_id)
            return
        except Exception:
            log.exception("background response %s failed", response_id)
            error = internal_error()
        final = failure(machine, error)
        pending.append(machine.event("response.failed", response=final))
        await _quietly(self.store.responses.add_events(response_id, pending, None))
        await _quietly(self.store.responses.finish(final))

    def cancel_local(self, response_id: str) -> None:
        task = self.tasks.get(response_id)
        if task is not None:
            task.cancel()

    def replay(self, response_id: str, starting_after: int) -> Response:
        """SSE of a background response's events after `starting_after`, following it until it ends."""

        async def frames() -> AsyncIterator[bytes]:
            after = starting_after
            ended = False
            while True:
                try:
                    events = await self.store.responses.events_after(response_id, after)
                    if not events and not ended:
                        ended = await self.store.responses.status(response_id) in (*TERMINAL, None)
                        if not ended:
                            await asyncio.sleep(self.poll)
                        continue
                except StoreUnavailable as exc:
                    error = GatewayError(
                        503, f"the response store is unavailable: {exc}", type="server_error"
                    )
                    yield _sse.encode(
                        {"type": "error", "sequence_number": after + 1, **error.body()}, "error"
                    )
                    return
                for event in events:
                    after = int(event["sequence_number"])
                    yield _sse.encode(event, str(event["type"]))
                if not events:
                    return

        return _sse.EventStreamResponse(frames(), keepalive=self.generation.keepalive)


async def _quietly(work: Any) -> None:
    """The last writes of a response that is ending anyway: a failure (store down, the row deleted
    meanwhile) is logged, and the stale sweep ends a row that still exists."""
    try:
        await work
    except Exception as exc:
        log.warning("could not store the end of a background response: %r", exc)
