"""The sweep: for each frontend and workload, warm up, then each concurrency `repeats` times.

Frontends run one after another on the same machine (two engines would not fit beside each
other at the seed's memory utilisation): the engine in a child process (so its memory is
released when it exits), then our service with the gateway on it, then `vllm serve`. Each
group writes `detail-<group>.json` in the output folder after every point, so whatever was
measured survives a timeout; `bench report` merges them into rows, a report and plots.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import time
from collections.abc import Coroutine
from dataclasses import asdict, replace
from typing import Any

from bench.engine_frontend import run_engine
from bench.frontends import run_ours, run_vllm_serve
from bench.loadgen import run_fast
from bench.run_config import RunConfig, config_to_argv
from bench.smg_frontend import run_smg

FRONTENDS = ("engine", "grpc", "gateway", "vllm-serve", "smg")  # and vllm-serve-apiN (N API servers)


def run_all(config: RunConfig) -> None:
    """Every requested frontend, one group after another, within the run time budget."""
    deadline = time.monotonic() + config.max_seconds
    for name in config.frontends:
        if name not in FRONTENDS and not name.removeprefix("vllm-serve-api").isdigit():
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
    for name in config.frontends:
        if name.startswith("vllm-serve") and deadline - time.monotonic() > 30:
            _run_async(run_vllm_serve(_with_budget(config, deadline), name))
    if "smg" in config.frontends and deadline - time.monotonic() > 30:
        _run_async(run_smg(_with_budget(config, deadline)))


def _with_budget(config: RunConfig, deadline: float) -> RunConfig:
    return replace(config, max_seconds=max(0.0, deadline - time.monotonic()))


def _run_async(coro: Coroutine[Any, Any, None]) -> None:
    run_fast(coro)
