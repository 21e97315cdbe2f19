"""From the `detail-*.json` of one run to rows: the median over repeats per (workload, frontend,
concurrency), and `Results`, the lookups every part of the report reads them through."""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

FRONTEND_ORDER = ("engine", "grpc", "gateway", "vllm-serve", "vllm-serve-api", "smg")


def frontend_rank(name: str) -> tuple[int, int]:
    """Report order: ours, then the anchors (vllm-serve-apiN by N)."""
    if name.startswith("vllm-serve-api") and name.removeprefix("vllm-serve-api").isdigit():
        return FRONTEND_ORDER.index("vllm-serve-api"), int(name.removeprefix("vllm-serve-api"))
    return (FRONTEND_ORDER.index(name) if name in FRONTEND_ORDER else len(FRONTEND_ORDER)), 0


ROW_KEYS = (
    "frontend",
    "concurrency",
    "prompt_tokens",
    "output_tokens",
    "output_tok_s",
    "ttft_p50_ms",
    "ttft_p99_ms",
    "itl_p50_ms",
    "itl_p99_ms",
    "machine",
    "engine",
    "date",
)
_MEDIAN_KEYS = (
    "output_tok_s",
    "ttft_p50_ms",
    "ttft_p99_ms",
    "itl_p50_ms",
    "itl_p99_ms",
    "e2e_p50_ms",
    "e2e_p99_ms",
    "tpot_mean_ms",
    "prompt_tokens",
    "output_tokens",
)

Key = tuple[str, str, int]  # workload, frontend, concurrency


def load(folder: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    details = []
    for path in sorted(folder.glob("detail-*.json")):
        details.append(json.loads(path.read_text()))
    if not details:
        raise SystemExit(f"no detail-*.json in {folder}")
    points = [p | {"_meta": d["meta"]} for d in details for p in d["points"]]
    return details, points


def _median(values: Iterable[Any]) -> Any:
    present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not present:
        return None
    value = statistics.median(present)
    return int(value) if all(isinstance(v, int) for v in present) else round(float(value), 2)


def aggregate(points: Sequence[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    """Median over repeats of every metric; the spread of throughput is kept beside it."""
    groups: dict[Key, list[dict[str, Any]]] = defaultdict(list)
    for point in points:
        groups[(point["workload"], point["frontend"], point["concurrency"])].append(point)
    merged: dict[Key, dict[str, Any]] = {}
    for key, group in groups.items():
        meta = group[0]["_meta"]
        row: dict[str, Any] = {k: _median(p.get(k) for p in group) for k in _MEDIAN_KEYS}
        throughputs = [p["output_tok_s"] for p in group]
        cpu: dict[str, list[float]] = defaultdict(list)
        for p in group:
            for name, cores in (p.get("server_cpu_cores") or {}).items():
                cpu[name].append(cores)
        row |= {
            "frontend": key[1],
            "concurrency": key[2],
            "machine": meta["machine"],
            "engine": meta["engine"],
            "date": meta["date"],
            "repeats": len(group),
            "tok_s_min": min(throughputs),
            "tok_s_max": max(throughputs),
            "ok": sum(p["ok"] for p in group),
            "short": sum(p.get("short_requests", 0) for p in group),
            "requests": sum(p["requests"] for p in group),
            "errors": sorted({e for p in group for e in p.get("errors", [])}),
            "server_cpu_cores": {name: _median(v) for name, v in cpu.items()},
        }
        merged[key] = row
    # The engine takes token ids in both workloads: its points are the ceiling for chat too.
    for (workload, frontend, concurrency), row in list(merged.items()):
        if frontend == "engine" and workload == "tokens" and ("chat", "engine", concurrency) not in merged:
            merged[("chat", "engine", concurrency)] = row | {"borrowed": True}
    return merged


def rows(merged: dict[Key, dict[str, Any]], workload: str) -> list[dict[str, Any]]:
    selected = [row for (w, _, _), row in merged.items() if w == workload]
    selected.sort(key=lambda r: (frontend_rank(r["frontend"]), r["concurrency"]))
    return [{k: row[k] for k in ROW_KEYS} for row in selected]


class Results:
    """The points of one results folder, merged; failed points (nothing ok) kept apart."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.details, points = load(folder)
        self.cold = [p for p in points if p.get("cold")]  # first bursts on fresh servers
        points = [p for p in points if not p.get("cold")]
        self.points = [p for p in points if p["ok"] > 0]
        self.failed = [p for p in points if p["ok"] == 0]
        self.merged = aggregate(self.points)
        self.workloads = [w for w in ("tokens", "chat") if any(k[0] == w for k in self.merged)]

    def get(self, workload: str, frontend: str, concurrency: int, key: str) -> Any:
        row = self.merged.get((workload, frontend, concurrency))
        return None if row is None else row.get(key)

    def cores_per_10k(self, workload: str, frontend: str, concurrency: int) -> float | None:
        """Serving-process CPU cores per 10,000 output tok/s at that point (None: not recorded)."""
        cpu = self.get(workload, frontend, concurrency, "server_cpu_cores") or {}
        rate = self.get(workload, frontend, concurrency, "output_tok_s")
        return sum(cpu.values()) * 10_000 / rate if cpu and rate else None

    def concurrencies(self, workload: str) -> list[int]:
        return sorted({k[2] for k in self.merged if k[0] == workload})

    def frontends(self, workload: str) -> list[str]:
        present = {k[1] for k in self.merged if k[0] == workload}
        return sorted(present, key=frontend_rank)
