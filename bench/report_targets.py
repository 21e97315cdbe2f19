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
    return out + anchor_targets(res)


def is_anchor(frontend: str) -> bool:
    """vLLM's frontends (vllm-serve, vllm-serve-apiN) and the SMG router."""
    return frontend.startswith("vllm-serve") or frontend == "smg"


def best_anchor(res: Results, workload: str, c: int, key: str) -> tuple[float | None, str]:
    """The strongest anchor on this metric at c: most tok/s, least latency or CPU."""
    values = [
        (value, f)
        for f in res.frontends(workload)
        if is_anchor(f) and (value := res.get(workload, f, c, key))
    ]
    if not values:
        return None, ""
    return (max if key.endswith("tok_s") else min)(values)


def anchor_targets(res: Results) -> list[tuple[str, str, str]]:
    """Issue 19: streamed chat against the best anchor (max of vllm-serve-apiN and smg), the
    engine ceiling, the cold first burst, and serving CPU per 10k tok/s."""
    if "chat" not in res.workloads:
        return []
    concs = [c for c in res.concurrencies("chat") if c >= 64]
    out: list[tuple[str, str, str]] = []
    for front, key, bound, at, label in (
        ("gateway", "output_tok_s", 1.0, concs, "gateway ≥ 1.0x best anchor tok/s"),
        (
            "gateway",
            "ttft_p50_ms",
            0.8,
            [c for c in concs if c in (64, 256)],
            "gateway TTFT p50 ≤ 0.8x best anchor",
        ),
        (
            "grpc",
            "ttft_p50_ms",
            0.8,
            [c for c in concs if c in (64, 256)],
            "gRPC TTFT p50 ≤ 0.8x best anchor",
        ),
    ):
        ratios, names = {}, {}
        for c in at:
            anchor, names[c] = best_anchor(res, "chat", c, key)
            ratios[c] = ratio(res.get("chat", front, c, key), anchor)
        out += ratio_target(f"[chat] {label} at {', '.join(map(str, at))}", ratios, key, bound, names)
    label = f"gateway ≥ 0.97x engine tok/s at {', '.join(map(str, concs))}"
    out += sweep_target(res, "chat", "gateway", "engine", "output_tok_s", concs, label, 0.97)
    return out + _cold_target(res) + _cpu_target(res, concs)


def _cold_target(res: Results) -> list[tuple[str, str, str]]:
    """Our first burst's TTFT p50 ≤ 0.5x the best anchor's first burst (same streams)."""
    ours = [p for p in res.cold if p["frontend"] in ("grpc", "gateway") and p.get("ttft_p50_ms")]
    anchors = [p for p in res.cold if is_anchor(p["frontend"]) and p.get("ttft_p50_ms")]
    if not ours or not anchors:
        return []
    best = min(anchors, key=lambda p: p["ttft_p50_ms"])
    mine = ours[0]
    r = ratio(mine["ttft_p50_ms"], best["ttft_p50_ms"])
    detail = f"{mine['frontend']} {mine['ttft_p50_ms']:.0f} ms vs {best['frontend']} {best['ttft_p50_ms']:.0f} ms: {x(r)}"
    return [
        (
            f"cold: first {mine['concurrency']}-stream burst TTFT p50 ≤ 0.5x the best anchor's",
            detail,
            verdict(r is not None and r <= 0.5),
        )
    ]


def _cpu_target(res: Results, concs: list[int]) -> list[tuple[str, str, str]]:
    """Serving-process cores per 10k output tok/s: ours the lowest of the Python frontends."""

    def per_10k(front: str, c: int) -> float | None:
        return res.cores_per_10k("chat", front, c)

    python = [f for f in res.frontends("chat") if f.startswith("vllm-serve")]
    cells, met = [], True
    for c in concs:
        mine = per_10k("gateway", c)
        theirs = [v for f in python if (v := per_10k(f, c)) is not None]
        if mine is None or not theirs:
            continue
        met = met and mine < min(theirs)
        smg = per_10k("smg", c)
        cells.append(
            f"c={c}: gateway {mine:.2f}, best vLLM {min(theirs):.2f}" + (f", smg {smg:.2f}" if smg else "")
        )
    if not cells:
        return []
    return [
        (
            "[chat] gateway (service + gateway) cores per 10k tok/s below every vLLM Python frontend",
            "; ".join(cells),
            verdict(met),
        )
    ]


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
    return ratio_target(f"[{workload}] {label}", ratios, key, bound)


def ratio_target(
    label: str,
    ratios: dict[int, float | None],
    key: str,
    bound: float,
    names: dict[int, str] | None = None,
) -> list[tuple[str, str, str]]:
    """One verdict over per-concurrency ratios: throughput must reach `bound`, latency stay under it;
    `names` tells which baseline each ratio is against (the best anchor can differ per concurrency)."""
    if all(r is None for r in ratios.values()):
        return []
    higher_is_better = key.endswith("tok_s")
    met = all(r is not None and (r >= bound if higher_is_better else r <= bound) for r in ratios.values())
    detail = ", ".join(f"c={c}: {x(r)}" + (f" ({names[c]})" if names else "") for c, r in ratios.items())
    return [(label, detail, verdict(met))]
