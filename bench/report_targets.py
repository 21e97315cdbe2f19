"""The targets of the benchmark issue, answered from one run's ratios: (target, measured, verdict)."""

from __future__ import annotations

from typing import Any

from bench.aggregate import Results
from bench.markdown import ratio, verdict, x


def targets(res: Results) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for every target the data can answer."""
    out: list[tuple[str, str, str]] = []
    for workload in res.workloads:
        concs = res.concurrencies(workload)
        if not concs:
            continue
        high = [c for c in concs if c >= 64] or concs[-3:]
        top = concs[-1]
        mid = 64 if 64 in concs else concs[len(concs) // 2]
        tag = f"[{workload}]"

        def sweep(*args: Any) -> list[tuple[str, str, str]]:  # one ratio per concurrency, one verdict
            return sweep_target(res, *args)

        at_high = f"at {', '.join(map(str, high))}"
        out += sweep(
            workload, "grpc", "engine", "output_tok_s", high, f"gRPC ≥ 0.98x engine tok/s {at_high}", 0.98
        )
        out += sweep(
            workload,
            "grpc",
            "engine",
            "ttft_p50_ms",
            high,
            f"gRPC TTFT p50 ≤ 1.05x engine {at_high}",
            1.05,
        )
        r = ratio(
            res.get(workload, "grpc", top, "output_tok_s"),
            res.get(workload, "vllm-serve", top, "output_tok_s"),
        )
        if r is not None:
            out.append((f"{tag} gRPC ≥ 1.10x vllm serve tok/s at {top}", x(r), verdict(r >= 1.10)))
        r = ratio(
            res.get(workload, "grpc", mid, "ttft_p50_ms"),
            res.get(workload, "vllm-serve", mid, "ttft_p50_ms"),
        )
        if r is not None:
            out.append((f"{tag} gRPC TTFT p50 ≤ 0.8x vllm serve at {mid}", x(r), verdict(r <= 0.8)))
        label = "gateway ≥ 1.0x vllm serve tok/s at every concurrency"
        out += sweep(workload, "gateway", "vllm-serve", "output_tok_s", concs, label, 1.0)
    return out


def sweep_target(
    res: Results,
    workload: str,
    frontend: str,
    baseline: str,
    key: str,
    concs: list[int],
    label: str,
    bound: float,
) -> list[tuple[str, str, str]]:
    """frontend/baseline per concurrency; throughput must reach `bound`, latency stay under it."""
    ratios = {
        c: ratio(res.get(workload, frontend, c, key), res.get(workload, baseline, c, key)) for c in concs
    }
    if all(r is None for r in ratios.values()):
        return []
    higher_is_better = key.endswith("tok_s")
    met = all(r is not None and (r >= bound if higher_is_better else r <= bound) for r in ratios.values())
    detail = ", ".join(f"c={c}: {x(r)}" for c, r in ratios.items())
    return [(f"[{workload}] {label}", detail, verdict(met))]
