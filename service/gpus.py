"""Which GPUs this process may use, found without importing torch (config time must stay fast).

`probe_gpus()` asks `nvidia-smi` for each GPU's memory; without it, it counts the driver's
`/proc/driver/nvidia/gpus/*` entries (memory unknown). `CUDA_VISIBLE_DEVICES` narrows either.
`profile_for(gpus)` turns what was found into a profile name; both are pure enough to unit-test
with a fake probe.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PROC_GPUS = Path("/proc/driver/nvidia/gpus")
GIB = 1 << 30
# nvidia-smi reports binary MiB: an "80 GB" H100 shows 81,559 MiB (79.6 GiB), a "24 GB" L4 23,034 MiB.
BIG_GPU_GIB = 74.0  # gpt-oss-120b at TP=1: 61.5 GiB of weights + KV cache (measured on 1x H200)
MID_GPU_GIB = 22.0  # gpt-oss-20b: ~13 GiB of weights + KV cache


@dataclass(frozen=True)
class Gpu:
    index: int
    memory_bytes: int | None  # None when only the driver's /proc entry was found


@dataclass(frozen=True)
class ProfileChoice:
    profile: str
    reason: str  # shown by --help and --print-config


def _visible(gpus: list[Gpu], visible: str | None) -> list[Gpu]:
    """Apply CUDA_VISIBLE_DEVICES: indices pick GPUs, UUIDs only limit the count, "" hides all."""
    if visible is None:
        return gpus
    entries = [entry.strip() for entry in visible.split(",") if entry.strip()]
    if all(entry.isdigit() for entry in entries):
        by_index = {gpu.index: gpu for gpu in gpus}
        return [by_index[int(entry)] for entry in entries if int(entry) in by_index]
    return gpus[: len(entries)]


def _from_nvidia_smi() -> list[Gpu] | None:
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return None
    try:
        out = subprocess.run(
            [binary, "--query-gpu=index,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    gpus = []
    for line in out.splitlines():
        index, _, mib = line.partition(",")
        if index.strip().isdigit() and mib.strip().isdigit():
            gpus.append(Gpu(int(index), int(mib) << 20))
    return gpus


def _from_proc() -> list[Gpu]:
    if not PROC_GPUS.is_dir():
        return []
    return [Gpu(index, None) for index, _ in enumerate(sorted(PROC_GPUS.iterdir()))]


def probe_gpus() -> list[Gpu]:
    """The GPUs visible to this process (empty without an NVIDIA driver)."""
    found = _from_nvidia_smi()
    if found is None:
        found = _from_proc()
    return _visible(found, os.environ.get("CUDA_VISIBLE_DEVICES"))


def _describe(gpus: Sequence[Gpu]) -> str:
    memory = [gpu.memory_bytes for gpu in gpus if gpu.memory_bytes is not None]
    size = f", {min(memory) / GIB:.0f} GiB each" if len(memory) == len(gpus) else ", memory unknown"
    return f"{len(gpus)} GPU{'s' if len(gpus) > 1 else ''}{size}"


def profile_for(gpus: Sequence[Gpu]) -> ProfileChoice:
    """The largest model the GPUs hold: 4+ GPUs 120b at TP=4, one 80 GB GPU 120b, 24 GB 20b."""
    if not gpus:
        return ProfileChoice("cpu-tiny", "no GPU found")
    seen = _describe(gpus)
    smallest = min((gpu.memory_bytes or 0) for gpu in gpus) / GIB
    unknown = any(gpu.memory_bytes is None for gpu in gpus)
    if len(gpus) >= 4 and (unknown or smallest >= MID_GPU_GIB):
        return ProfileChoice("gpt-oss-120b-tp4", seen)
    if unknown:
        return ProfileChoice("gpt-oss-20b", f"{seen} (no nvidia-smi): the 24 GB choice")
    largest = max(gpu.memory_bytes or 0 for gpu in gpus) / GIB
    if largest >= BIG_GPU_GIB:
        return ProfileChoice("gpt-oss-120b", seen)
    if largest >= MID_GPU_GIB:
        return ProfileChoice("gpt-oss-20b", seen)
    return ProfileChoice("cpu-tiny", f"{seen}: too small for gpt-oss-20b")
