"""Bounded soak (`make soak`): mixed load on the CPU profile for a fixed time, RSS sampled throughout,
and a report that shows whether memory grows.

    python scripts/soak.py                       # 5 minutes, cpu-tiny, gRPC + gateway traffic
    python scripts/soak.py --duration 60 --out .tmp/soak   # a quick look

It starts its own `python -m service` (cpu-tiny, loopback, free ports) and `python -m gateway` in
front of it, drives them with a mix of what production sees (chat and raw-token streams read to the
end, streams cancelled midway, deadlines that expire, invalid requests, CountTokens / GetModelInfo,
SSE through the gateway, SSE clients hanging up), samples the RSS of the server, vLLM's EngineCore
and Worker and the gateway every few seconds, then drains both with SIGTERM.

Writes bench/results/soak-<UTC time>.md and .json. Exit status 0 only if nothing ended unexpectedly
(INTERNAL / UNKNOWN / 5xx / a hang), both processes exited 0 after the drain, the engine and the
active-streams gauge ended at 0, and no process grew beyond its allowance between the end of the
warm-up and the end of the run. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import psutil
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.reliability.helpers import metric  # noqa: E402
from tests.reliability.service_process import ServiceProcess  # noqa: E402

MiB = 1 << 20
# Growth allowed from the end of the warm-up to the end of the run, per process (MiB). The model
# runner (Worker) keeps shape-keyed kernel/allocator caches that fill as new batch shapes appear.
ALLOWANCE_MIB = {"server": 48, "EngineCore": 48, "Worker": 160, "gateway": 48}
WORDS = "the sea a poem about light and water under stone wind river city night morning".split()
EXPECTED = {
    "grpc chat": {"OK"},
    "grpc raw": {"OK"},
    "grpc cancel": {"CANCELLED", "OK"},
    "grpc deadline": {"DEADLINE_EXCEEDED", "OK"},
    "grpc invalid": {"INVALID_ARGUMENT"},
    "grpc info": {"OK"},
    "sse stream": {"200"},
    "sse hang-up": {"200"},
    "http whole": {"200"},
}
MIX = [  # (kind, weight)
    ("grpc chat", 25),
    ("grpc raw", 15),
    ("grpc cancel", 15),
    ("grpc deadline", 5),
    ("grpc invalid", 5),
    ("grpc info", 5),
    ("sse stream", 15),
    ("sse hang-up", 10),
    ("http whole", 5),
]


@dataclass
class Run:
    started: float = field(default_factory=time.monotonic)
    outcomes: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    unexpected: list[str] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)

    def record(self, kind: str, outcome: str, detail: str = "") -> None:
        self.outcomes[(kind, outcome)] += 1
        if outcome not in EXPECTED[kind] and len(self.unexpected) < 50:
            self.unexpected.append(f"{kind}: {outcome} {detail}".strip())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 60)))


async def _grpc_one(
    stub: inference_pb2_grpc.InferenceServiceStub, kind: str, rng: random.Random, run: Run
) -> None:
    user = [pb.Message(role=pb.ROLE_USER, content=_text(rng))]
    try:
        if kind == "grpc info":
            await stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=10)
            await stub.CountTokens(pb.CountTokensRequest(messages=user), timeout=10)
            run.record(kind, "OK")
            return
        if kind == "grpc invalid":
            bad = rng.choice(
                [
                    pb.GenerateRequest(),
                    pb.GenerateRequest(messages=user, max_tokens=-1),
                    pb.GenerateRequest(messages=user, temperature=9.0),
                    pb.GenerateRequest(messages=[pb.Message(role=42, content="x")]),  # type: ignore[arg-type]
                ]
            )
            await stub.Generate(bad, timeout=10).read()
            run.record(kind, "OK", "an invalid request was accepted")
            return
        if kind == "grpc raw" or kind == "grpc cancel":
            prompt = [
                200006,
                1428,
                200008,
                *(rng.randrange(1000, 199000) for _ in range(rng.randint(1, 200))),
            ]
            request = pb.GenerateRequest(
                prompt_token_ids=prompt, max_tokens=rng.randint(8, 64), ignore_eos=True
            )
        else:
            request = pb.GenerateRequest(messages=user, max_tokens=rng.randint(16, 64))
        timeout = rng.uniform(0.05, 0.5) if kind == "grpc deadline" else 120
        call = stub.Generate(request, timeout=timeout)
        events = 0
        cancel_after = rng.randint(0, 8) if kind == "grpc cancel" else None
        cancelled = False
        async for response in call:
            events += 1
            if cancel_after is not None and events > cancel_after:
                call.cancel()
                cancelled = True
                break
            if response.HasField("done") and response.done.finish_reason == pb.FINISH_REASON_UNSPECIFIED:
                run.record(kind, "BAD_DONE")
                return
        if cancelled:
            run.record(kind, (await call.code()).name)
        else:
            run.record(kind, "OK" if events else "EMPTY")
    except grpc.aio.AioRpcError as error:
        run.record(kind, error.code().name, error.details() or "")
    except asyncio.CancelledError:
        run.record(kind, "CANCELLED")


async def _http_one(client: httpx.AsyncClient, kind: str, model: str, rng: random.Random, run: Run) -> None:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": _text(rng)}],
        "max_tokens": rng.randint(8, 64),
    }
    try:
        if kind == "http whole":
            response = await client.post("/v1/chat/completions", json=body)
            run.record(
                kind, str(response.status_code), response.text[:200] if response.status_code != 200 else ""
            )
            return
        async with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as response:
            status = str(response.status_code)
            if response.status_code != 200:
                run.record(kind, status, (await response.aread()).decode()[:200])
                return
            if kind == "sse hang-up":
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(rng.uniform(0, 0.5)):
                        async for _ in response.aiter_lines():
                            pass
                run.record(kind, status)  # leaving the block hangs up
                return
            last = ""
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    last = line
                    if '"error"' in line:
                        run.record(kind, "error event", line[:200])
                        return
            run.record(kind, status if last == "data: [DONE]" else "no [DONE]")
    except httpx.HTTPError as error:
        run.record(kind, type(error).__name__, str(error)[:200])


async def _load(target: str, gateway_url: str, model: str, args: argparse.Namespace, run: Run) -> None:
    kinds = [kind for kind, _ in MIX]
    weights = [weight for _, weight in MIX]
    deadline = time.monotonic() + args.duration
    limits = httpx.Limits(max_connections=args.concurrency * 2)
    async with (
        grpc.aio.insecure_channel(target) as channel,
        httpx.AsyncClient(base_url=gateway_url, timeout=120, limits=limits) as client,
    ):
        stub = inference_pb2_grpc.InferenceServiceStub(channel)

        async def worker(seed: int) -> None:
            rng = random.Random(seed)
            while time.monotonic() < deadline:
                kind = rng.choices(kinds, weights)[0]
                one = (
                    _grpc_one(stub, kind, rng, run)
                    if kind.startswith("grpc")
                    else _http_one(client, kind, model, rng, run)
                )
                try:
                    await asyncio.wait_for(one, 180)
                except TimeoutError:
                    run.record(kind, "HANG")

        await asyncio.gather(*(worker(args.seed + i) for i in range(args.concurrency)))


def _rss(service: ServiceProcess, gateway: subprocess.Popen[bytes]) -> dict[str, float]:
    sizes = {name: size / MiB for name, size in service.tree_rss().items() if name in ALLOWANCE_MIB}
    with contextlib.suppress(psutil.Error):
        sizes["gateway"] = psutil.Process(gateway.pid).memory_info().rss / MiB
    return sizes


async def _sampler(
    service: ServiceProcess, gateway: subprocess.Popen[bytes], every: float, run: Run, stop: asyncio.Event
) -> None:
    metrics_url = f"http://127.0.0.1:{service.metrics_port}/metrics"
    while not stop.is_set():
        sample: dict[str, Any] = {"t": round(time.monotonic() - run.started, 1)}
        sample["rss_mib"] = {
            k: round(v, 1) for k, v in (await asyncio.to_thread(_rss, service, gateway)).items()
        }
        with contextlib.suppress(OSError):
            sample["active_streams"] = await asyncio.to_thread(metric, metrics_url, "gptoss_active_streams")
        sample["requests"] = sum(run.outcomes.values())
        run.samples.append(sample)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope, per minute."""
    if len(points) < 3:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return 60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def _analyse(run: Run, warm_up: float, duration: float) -> dict[str, dict[str, float]]:
    loaded = [s for s in run.samples if warm_up <= s["t"] <= duration + 1]
    window = max(3, len(loaded) // 10)
    growth: dict[str, dict[str, float]] = {}
    for name in ALLOWANCE_MIB:
        series = [(s["t"], s["rss_mib"][name]) for s in loaded if name in s["rss_mib"]]
        if len(series) < 2 * window:
            continue
        start = statistics.median(v for _, v in series[:window])
        end = statistics.median(v for _, v in series[-window:])
        half = len(series) // 2
        middle = statistics.median(v for _, v in series[half - window // 2 : half + window // 2 + 1])
        growth[name] = {
            "start_mib": round(start, 1),
            "end_mib": round(end, 1),
            "growth_mib": round(end - start, 1),
            # A cache filling up grows less in the second half; a per-request leak grows alike.
            "growth_first_half_mib": round(middle - start, 1),
            "growth_second_half_mib": round(end - middle, 1),
            "slope_mib_per_min": round(_slope(series), 2),
            "allowance_mib": ALLOWANCE_MIB[name],
            "peak_mib": round(max(v for _, v in series), 1),
        }
    return growth


def _report(path: Path, data: dict[str, Any]) -> None:
    lines = [
        f"# Soak {data['started_utc']}",
        "",
        f"**Verdict: {'PASS' if data['passed'] else 'FAIL'}** - {data['verdict']}",
        "",
        f"- duration {data['duration_s']} s of mixed load (warm-up {data['warm_up_s']} s), concurrency "
        f"{data['concurrency']}, profile `cpu-tiny`, {data['cpu_count']} CPUs",
        f"- requests: {data['requests']} ({data['requests_per_s']}/s), unexpected outcomes: {len(data['unexpected'])}",
        f"- after the load: engine requests {data['engine_after']}, active streams {data['active_streams_after']}",
        f"- exit codes after SIGTERM: service {data['exit_codes']['service']}, gateway {data['exit_codes']['gateway']}",
        "",
        "## Memory (RSS, MiB) from the end of the warm-up to the end of the run",
        "",
        "| process | start | end | growth | 1st half | 2nd half | slope MiB/min | peak | allowance |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, g in data["memory"].items():
        lines.append(
            f"| {name} | {g['start_mib']} | {g['end_mib']} | {g['growth_mib']:+} | {g['growth_first_half_mib']:+} "
            f"| {g['growth_second_half_mib']:+} | {g['slope_mib_per_min']:+} | {g['peak_mib']} | {g['allowance_mib']} |"
        )
    lines += ["", "## Outcomes", "", "| kind | outcome | count |", "|---|---|---:|"]
    for key, count in sorted(data["outcomes"].items()):
        kind, outcome = key.split(" -> ")
        lines.append(f"| {kind} | {outcome} | {count} |")
    if data["unexpected"]:
        lines += ["", "## Unexpected", "", *(f"- `{u}`" for u in data["unexpected"][:20])]
    lines += ["", "## RSS samples (every ~30 s)", ""]
    names = list(data["memory"]) or ["server"]
    lines += ["| t (s) | requests | active | " + " | ".join(names) + " |", "|---:" * (3 + len(names)) + "|"]
    step = max(1, round(30 / data["sample_every_s"]))
    for sample in data["samples"][::step] + data["samples"][-1:]:
        rss = " | ".join(str(sample["rss_mib"].get(n, "")) for n in names)
        lines.append(f"| {sample['t']} | {sample['requests']} | {sample.get('active_streams', '')} | {rss} |")
    path.write_text("\n".join(lines) + "\n")


def _start_gateway(target: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "gateway",
        "--backend",
        target,
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    gateway = subprocess.Popen(command, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and gateway.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/ready", timeout=2).status_code == 200:
                return gateway, url
        time.sleep(0.1)
    gateway.kill()
    gateway.wait(10)
    raise RuntimeError("the gateway did not become ready")


async def _drive(
    service: ServiceProcess,
    gateway: subprocess.Popen[bytes],
    gateway_url: str,
    model: str,
    args: argparse.Namespace,
) -> tuple[Run, float]:
    run = Run()
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sampler(service, gateway, args.sample_every, run, stop))
    await _load(service.target, gateway_url, model, args, run)
    loaded_for = time.monotonic() - run.started
    await asyncio.sleep(3)  # let cancellations and aborts land
    stop.set()
    await sampler
    return run, loaded_for


def _soak(args: argparse.Namespace) -> int:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print("[soak] starting the service (cpu-tiny) ...", flush=True)
    service = ServiceProcess()
    gateway: subprocess.Popen[bytes] | None = None
    exit_codes: dict[str, int | None] = {"service": None, "gateway": None}
    try:
        service.start()
        gateway, gateway_url = _start_gateway(service.target)
        with grpc.insecure_channel(service.target) as channel:
            stub = inference_pb2_grpc.InferenceServiceStub(channel)
            model = stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=10).model_id
        print(
            f"[soak] service {service.target}, gateway {gateway_url}: {args.duration:.0f} s of load",
            flush=True,
        )
        run, loaded_for = asyncio.run(_drive(service, gateway, gateway_url, model, args))
        metrics_url = f"http://127.0.0.1:{service.metrics_port}/metrics"
        active_after = metric(metrics_url, "gptoss_active_streams")
        engine_after = metric(metrics_url, "gptoss_engine_requests_running") + metric(
            metrics_url, "gptoss_engine_requests_waiting"
        )
        # Drain both the way an orchestrator would.
        service.terminate()
        exit_codes["service"] = service.wait_exit(120)
        gateway.send_signal(signal.SIGTERM)
        exit_codes["gateway"] = gateway.wait(60)
    finally:
        if gateway is not None and gateway.poll() is None:
            gateway.kill()
            gateway.wait(10)
        service.stop()

    memory = _analyse(run, args.warm_up, args.duration)
    too_big = [
        f"{n} +{g['growth_mib']} MiB" for n, g in memory.items() if g["growth_mib"] > g["allowance_mib"]
    ]
    problems = []
    if run.unexpected:
        problems.append(f"{len(run.unexpected)} unexpected outcomes")
    if too_big:
        problems.append("memory grew: " + ", ".join(too_big))
    if len(memory) != len(ALLOWANCE_MIB):
        problems.append(f"memory not measured for {sorted(set(ALLOWANCE_MIB) - set(memory))}")
    if active_after or engine_after:
        problems.append(f"left running: {active_after} streams, {engine_after} engine requests")
    # uvicorn re-raises the SIGTERM it handled once it has shut down gracefully: -15 is a clean exit.
    if exit_codes["service"] != 0 or exit_codes["gateway"] not in (0, -signal.SIGTERM):
        problems.append(f"exit codes {exit_codes}")
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
        "active_streams_after": active_after,
        "engine_after": engine_after,
        "exit_codes": exit_codes,
        "memory": memory,
        "samples": run.samples,
    }
    json_path = out / f"soak-{stamp}.json"
    json_path.write_text(json.dumps(data, indent=1) + "\n")
    md_path = out / f"soak-{stamp}.md"
    _report(md_path, data)
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
