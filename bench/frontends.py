"""Our service (gRPC) with the gateway on it, and `vllm serve`: each started here (bench.servers)
or already running (a URL, or a pidfile written by `bench serve`), then swept."""

from __future__ import annotations

import asyncio
import time

from bench import servers
from bench.network_sweep import sweep_frontend
from bench.recorder import Recorder
from bench.run_config import RunConfig, read_pidfile
from bench.sweep import Sweep
from service.probes import free_port


async def run_ours(config: RunConfig) -> None:
    """Our service (gRPC) and the gateway on it."""
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
            port = free_port()
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
            await sweep_frontend(config, sweep, "grpc", target, pids, pids)
        if "gateway" in wanted:
            url = config.gateway_url
            gateway_pids = dict(pids)
            if url is None:
                port = free_port()
                url = f"http://127.0.0.1:{port}"
                gateway = servers.start_gateway(target, port, config.log_dir / "gateway.log")
                started.append(gateway)
                took = servers.wait_http_ready(gateway, url + "/ready", 120)
                recorder.data["servers"]["gateway"] = {"start_s": round(took, 1)}
                print(f"[gateway] ready on {url} after {took:.0f}s", flush=True)
                gateway_pids["gateway"] = gateway.pid
            await sweep_frontend(config, sweep, "gateway", url, gateway_pids, gateway_pids)
    finally:
        recorder.save()
        for server in reversed(started):
            server.stop()


async def run_vllm_serve(config: RunConfig, name: str = "vllm-serve") -> None:
    """`vllm serve`, or with `name` vllm-serve-apiN its CLI with N API server processes on one engine."""
    api_servers = int(name.removeprefix("vllm-serve-api")) if name != "vllm-serve" else 0
    recorder = Recorder(config, name)
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
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            server = servers.start_vllm_serve(
                config.settings(), port, config.log_dir / f"{name}.log", api_servers
            )
            print(f"[vllm-serve] starting on {url} (log {server.log_path})", flush=True)
            took = servers.wait_http_ready(
                server, url + "/health", min(config.start_timeout, sweep.remaining())
            )
            recorder.data["servers"][name] = {"start_s": round(took, 1), "argv": server.argv[1:]}
            print(f"[{name}] ready after {took:.0f}s", flush=True)
            pids[name] = server.pid
        if api_servers:  # the API server processes do the serving work, not their parent
            pids = servers.frontend_pids(pids[name], name) or pids
        await sweep_frontend(config, sweep, name, url, pids, pids)
    finally:
        recorder.save()
        if server is not None:
            server.stop()
