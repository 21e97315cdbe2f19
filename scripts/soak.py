"""Bounded soak (`make soak`): mixed load on the CPU profile for a fixed time, RSS sampled throughout,
and a report that shows whether memory grows.

    python scripts/soak.py                       # 5 minutes, cpu-tiny, gRPC + gateway traffic
    python scripts/soak.py --duration 60 --out .tmp/soak   # a quick look

It starts its own stack through the supervisor (`python -m service.stack`: the service on cpu-tiny
and the gateway in front of it, loopback, free ports), drives them with a mix of what production sees (chat and raw-token streams read to the
end, streams cancelled midway, deadlines that expire, invalid requests, CountTokens / GetModelInfo,
SSE through the gateway, SSE clients hanging up), samples the RSS of the server, vLLM's EngineCore
and Worker and the gateway every few seconds, then drains the stack with one SIGTERM.

Writes bench/results/soak-<UTC time>.md and .json. Exit status 0 only if nothing ended unexpectedly
(INTERNAL / UNKNOWN / 5xx / a hang), the stack exited 0 after the drain, the engine and the
active-streams gauge ended at 0, and no process grew beyond its allowance between the end of the
warm-up and the end of the run. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import grpc
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc
from soak_memory import ALLOWANCE_MIB, analyse, sample
from soak_report import write_markdown
from soak_stack import ROOT, SoakStack
from soak_traffic import Run, load


async def _drive(stack: SoakStack, model: str, args: argparse.Namespace) -> tuple[Run, float]:
    run = Run()
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample(stack, args.sample_every, run, stop))
    await load(
        stack.target,
        stack.gateway_url,
        model,
        run,
        duration=args.duration,
        concurrency=args.concurrency,
        seed=args.seed,
    )
    loaded_for = time.monotonic() - run.started
    await asyncio.sleep(3)  # let cancellations and aborts land
    stop.set()
    await sampler
    return run, loaded_for


def _problems(
    run: Run, memory: dict[str, dict[str, float]], after: dict[str, float], status: int
) -> list[str]:
    problems = []
    too_big = [
        f"{n} +{g['growth_mib']} MiB" for n, g in memory.items() if g["growth_mib"] > g["allowance_mib"]
    ]
    if run.unexpected:
        problems.append(f"{len(run.unexpected)} unexpected outcomes")
    if too_big:
        problems.append("memory grew: " + ", ".join(too_big))
    if len(memory) != len(ALLOWANCE_MIB):
        problems.append(f"memory not measured for {sorted(set(ALLOWANCE_MIB) - set(memory))}")
    if after["active_streams"] or after["engine"]:
        problems.append(f"left running: {after['active_streams']} streams, {after['engine']} engine requests")
    if status != 0:
        problems.append(f"exit status {status}")
    return problems


def _soak(args: argparse.Namespace) -> int:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print("[soak] starting the stack (cpu-tiny) ...", flush=True)
    stack = SoakStack()
    try:
        stack.start()
        with grpc.insecure_channel(stack.target) as channel:
            stub = inference_pb2_grpc.InferenceServiceStub(channel)
            model = stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=10).model_id
        print(f"[soak] service {stack.target}, gateway {stack.gateway_url}: {args.duration:.0f} s of load")
        run, loaded_for = asyncio.run(_drive(stack, model, args))
        after = {
            "active_streams": stack.metric("gptoss_active_streams"),
            "engine": stack.metric("gptoss_engine_requests_running")
            + stack.metric("gptoss_engine_requests_waiting"),
        }
        status = stack.drain()  # the way an orchestrator would
    finally:
        stack.kill()
    memory = analyse(run, args.warm_up, args.duration)
    problems = _problems(run, memory, after, status)
    requests = sum(run.outcomes.values())
    data: dict[str, Any] = {
        "started_utc": stamp,
        "passed": not problems,
        "verdict": "; ".join(problems) or "no growth beyond the allowances, nothing unexpected, clean drain",
        "duration_s": round(loaded_for, 1),
        "warm_up_s": args.warm_up,
        "concurrency": args.concurrency,
        "sample_every_s": args.sample_every,
        "cpu_count": os.cpu_count(),
        "requests": requests,
        "requests_per_s": round(requests / max(loaded_for, 1e-9), 1),
        "outcomes": {f"{k} -> {o}": n for (k, o), n in sorted(run.outcomes.items())},
        "unexpected": run.unexpected,
        "active_streams_after": after["active_streams"],
        "engine_after": after["engine"],
        "exit_status": status,
        "memory": memory,
        "samples": run.samples,
    }
    json_path = out / f"soak-{stamp}.json"
    json_path.write_text(json.dumps(data, indent=1) + "\n")
    md_path = out / f"soak-{stamp}.md"
    write_markdown(md_path, data)
    print(md_path.read_text())
    print(f"[soak] wrote {md_path} and {json_path}", flush=True)
    return 0 if data["passed"] else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of load (default 300)")
    parser.add_argument("--warm-up", type=float, default=60.0, help="seconds excluded from the growth check")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--sample-every", type=float, default=5.0, help="RSS sampling interval in seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    if args.warm_up >= args.duration:
        parser.error("--warm-up must be shorter than --duration")
    return _soak(args)


if __name__ == "__main__":
    sys.exit(main())
