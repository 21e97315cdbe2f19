"""`python -m bench.dispatch_probe HOST:PORT [--bursts N] [--streams S]`: when does the service start
each of S concurrent Generate calls?

Per burst, it prints when the initial metadata arrived, how long after the burst was sent, as min/median/max.
The service sends that metadata right after admission, before rendering, so it marks the moment the handler
ran. It also prints the first event and the end. On the 2-core CPU box a burst sometimes runs one call at a time:
the metadata of call k+1 arrives only when call k ends. A burst that started every call at once has
metadata within tens of milliseconds. The stall shows on direct gRPC as well as through the gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import grpc
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc as pb_grpc

ASK = [pb.Message(role=pb.ROLE_USER, content="Count from 1 to 100.")]


async def _one(
    stub: pb_grpc.InferenceServiceStub, sent: float, max_tokens: int
) -> tuple[float, float, float]:
    call = stub.Generate(pb.GenerateRequest(messages=ASK, max_tokens=max_tokens, temperature=0))
    await call.initial_metadata()
    started = time.monotonic() - sent
    first = None
    async for _ in call:
        if first is None:
            first = time.monotonic() - sent
    return started, first if first is not None else started, time.monotonic() - sent


def _spread(values: list[float]) -> str:
    ordered = sorted(values)
    return f"{ordered[0]:.2f}/{ordered[len(ordered) // 2]:.2f}/{ordered[-1]:.2f}"


async def probe(target: str, bursts: int, streams: int, max_tokens: int) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.InferenceServiceStub(channel)
        for burst in range(bursts):
            sent = time.monotonic()
            rows = await asyncio.gather(*(_one(stub, sent, max_tokens) for _ in range(streams)))
            started, first, end = (list(column) for column in zip(*rows, strict=True))
            print(
                f"burst {burst}: started {_spread(started)} s, first event {_spread(first)} s, "
                f"end {_spread(end)} s",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("target")
    parser.add_argument("--bursts", type=int, default=10)
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=256)
    args = parser.parse_args()
    asyncio.run(probe(args.target, args.bursts, args.streams, args.max_tokens))


if __name__ == "__main__":
    main()
