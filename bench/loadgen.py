"""Closed-loop load: `concurrency` streams, each sending its requests back to back, all starting at once.

Network frontends are driven from several client processes (so the load generator is never the
bottleneck at 256 streams), started once per frontend and synchronised on CLOCK_MONOTONIC
(`time.perf_counter`, the same clock in every process on Linux). The in-process engine is
driven from the engine's own event loop, like the service drives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import sys
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from bench.clients import Client, ClientSpec, Tally, make_client
from bench.stats import RequestResult
from bench.workload import Prompt

# One stream's requests: (prompt, max_tokens) sent one after another.
Stream = list[tuple[Prompt, int]]


async def run_streams(
    client: Client,
    streams: Sequence[Stream],
    start_at: float,
    timeout_s: float,
    tally: Tally,
) -> list[RequestResult]:
    """Run the streams from `start_at` (perf_counter time); requests still open at the timeout fail."""
    results: list[RequestResult] = []
    delay = start_at - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)

    async def one_stream(stream: Stream) -> None:
        for prompt, max_tokens in stream:
            results.append(await client.request(prompt, max_tokens))

    tasks = [asyncio.ensure_future(one_stream(stream)) for stream in streams]
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        now = time.perf_counter()
        expected = sum(len(stream) for stream in streams)
        results.extend(
            RequestResult(ok=False, start=start_at, end=now, error="timeout")
            for _ in range(expected - len(results))
        )
    return results


class Progress:
    """A one-line progress display: overwritten in place on a terminal, a line every few seconds in logs."""

    def __init__(self, label: str, requests: int, tokens: int) -> None:
        self._label = label
        self._requests = requests
        self._tokens = tokens
        self._started = time.perf_counter()
        self._tty = sys.stderr.isatty()
        self._last_print = 0.0

    def update(self, done: int, tokens: int, *, final: bool = False) -> None:
        now = time.perf_counter()
        if not final and now - self._last_print < (0.5 if self._tty else 5.0):
            return
        self._last_print = now
        elapsed = now - self._started
        line = (
            f"  {self._label}: {done}/{self._requests} req  {tokens:,}/{self._tokens:,} tok  "
            f"{tokens / max(elapsed, 1e-9):,.0f} tok/s  {elapsed:.1f}s"
        )
        if self._tty:
            sys.stderr.write("\r" + line.ljust(100) + ("\n" if final else ""))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


async def run_in_process(
    client: Client,
    streams: Sequence[Stream],
    timeout_s: float,
    progress: Progress,
    tally: Tally,
) -> list[RequestResult]:
    """Drive an in-process client (the engine) from this event loop, with the progress display."""

    async def show() -> None:
        while True:
            progress.update(tally.done, tally.tokens)
            await asyncio.sleep(0.5)

    shower = asyncio.ensure_future(show())
    try:
        return await run_streams(client, streams, time.perf_counter(), timeout_s, tally)
    finally:
        shower.cancel()
        progress.update(tally.done, tally.tokens, final=True)


# -- client processes ---------------------------------------------------------------------------


def run_fast(coro: Coroutine[Any, Any, None]) -> None:
    """asyncio.run on uvloop when it is there (the service and the gateway run on uvloop too)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(coro)


def _worker_main(conn: multiprocessing.connection.Connection, spec: ClientSpec) -> None:
    run_fast(_worker(conn, spec))


async def _worker(conn: multiprocessing.connection.Connection, spec: ClientSpec) -> None:
    tally = Tally()
    client = make_client(spec, tally)
    await client.open()
    conn.send(("ready",))
    try:
        while True:
            message = conn.recv()  # idle between points: nothing else runs on this loop
            if message[0] == "stop":
                return
            _, streams, start_at, timeout_s = message
            tally.done = tally.tokens = 0

            async def report() -> None:
                while True:
                    await asyncio.sleep(0.5)
                    conn.send(("progress", tally.done, tally.tokens))

            reporter = asyncio.ensure_future(report())
            try:
                results = await run_streams(client, streams, start_at, timeout_s, tally)
            finally:
                reporter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reporter
            conn.send(("result", results))
    finally:
        await client.close()


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: multiprocessing.connection.Connection


class ClientPool:
    """Client processes for one frontend; each point spreads its streams over them round-robin."""

    def __init__(self, spec: ClientSpec, processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        for _ in range(max(1, processes)):
            parent, child = context.Pipe()
            process = context.Process(target=_worker_main, args=(child, spec), daemon=True)
            process.start()
            child.close()
            self._workers.append(_Worker(process, parent))
        for worker in self._workers:
            if worker.conn.recv()[0] != "ready":
                raise RuntimeError("client process failed to start")

    @property
    def size(self) -> int:
        return len(self._workers)

    def run(
        self,
        streams: Sequence[Stream],
        timeout_s: float,
        progress: Progress | None = None,
    ) -> list[RequestResult]:
        shares: list[list[Stream]] = [[] for _ in self._workers]
        for i, stream in enumerate(streams):
            shares[i % len(shares)].append(stream)
        start_at = time.perf_counter() + 0.3
        active = [(worker, share) for worker, share in zip(self._workers, shares, strict=True) if share]
        for worker, share in active:
            worker.conn.send(("point", share, start_at, timeout_s))
        counts: dict[int, tuple[int, int]] = {}
        results: list[RequestResult] = []
        waiting = {id(worker.conn): worker for worker, _ in active}
        while waiting:
            ready = multiprocessing.connection.wait([w.conn for w in waiting.values()], timeout=0.5)
            for conn in ready:
                assert isinstance(conn, multiprocessing.connection.Connection)
                message = conn.recv()
                if message[0] == "progress":
                    counts[id(conn)] = (message[1], message[2])
                elif message[0] == "result":
                    results.extend(message[1])
                    counts[id(conn)] = (len(message[1]), sum(r.output_tokens for r in message[1]))
                    del waiting[id(conn)]
            for worker in waiting.values():
                if not worker.process.is_alive():
                    raise RuntimeError("a client process died")
            if progress is not None:
                progress.update(sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values()))
        if progress is not None:
            progress.update(len(results), sum(r.output_tokens for r in results), final=True)
        return results

    def close(self) -> None:
        for worker in self._workers:
            with contextlib.suppress(OSError):
                worker.conn.send(("stop",))
        for worker in self._workers:
            worker.process.join(10)
            if worker.process.is_alive():
                worker.process.kill()


def default_processes() -> int:
    """One client process per 8 cores, 1 to 8: 8 on the 64-core GPU hosts, 1 on a small CPU box."""
    import os

    return max(1, min(8, (os.cpu_count() or 1) // 8))
