"""The report's sections that are tables or lists: setup, throughput, latency, CPU, py-spy profiles."""

from __future__ import annotations

from bench.aggregate import Results, frontend_rank
from bench.markdown import fmt, md_head, md_row, ratio, x


def setup(res: Results) -> list[str]:
    meta = res.details[0]["meta"]
    work = meta["workload"]
    args = ", ".join(f"{k}={v}" for k, v in meta["engine_args"].items())
    servers = {k: v for d in res.details for k, v in d.get("servers", {}).items()}
    starts = ", ".join(f"{k} {v['start_s']:.0f}s" for k, v in servers.items())
    loads = [
        f"{d['meta']['group']}: {d['meta'].get('load_average_start')} → {d['meta'].get('load_average_end')}"
        for d in res.details
    ]
    return [
        f"- machine: {', '.join(sorted({d['meta']['machine'] for d in res.details}))} ({meta['cpus']} CPUs); "
        f"engine: {meta['engine']}; profile `{meta['profile']}`",
        f"- engine arguments (identical for every frontend): {args}",
        f"- workload: prompt ≈{work['prompt_tokens']} tokens "
        f"({'unique per request' if work['unique_prompts'] else 'the same prompt for every request, so the prefix cache serves it after the warm-up, as in ../shared/gpu probes'}), "
        f"{work['output_tokens']} output tokens (max_tokens, EOS ignored), temperature {work['temperature']}; "
        f"concurrency {work['concurrency']}; {work['waves']} request(s) per stream, all streams start together; "
        f"{work['repeats']} repeat(s) per point (table: median; spread: min-max); warm-up of "
        f"{work['warmup_tokens']}-token requests before each concurrency, not measured",
        f"- load generator: {meta['client_procs']} client process(es) (asyncio + uvloop; grpc.aio stubs, aiohttp), "
        "TTFT = send → first output event carrying tokens, ITL = gaps between such events per token",
        f"- server start times: {starts or 'n/a'}",
        f"- load average (1/5/15 min) per frontend group, start → end: {'; '.join(loads)}",
    ]


def throughput_table(res: Results, workload: str) -> list[str]:
    fronts = res.frontends(workload)
    head = ["concurrency", *[f"{f} tok/s" for f in fronts]]
    pairs = [("grpc", "engine"), ("gateway", "engine"), ("grpc", "vllm-serve"), ("gateway", "vllm-serve")]
    pairs = [(a, b) for a, b in pairs if a in fronts and b in fronts]
    head += [f"{a} / {b}" for a, b in pairs]
    lines = ["Output tokens per second (median of repeats; spread min-max where repeated):", ""]
    lines += md_head(head)
    for c in res.concurrencies(workload):
        cells = [str(c)]
        for f in fronts:
            row = res.merged.get((workload, f, c))
            if row is None:
                cells.append("-")
                continue
            cell = fmt(row["output_tok_s"])
            if row["repeats"] > 1:
                cell += f" ({fmt(row['tok_s_min'])}-{fmt(row['tok_s_max'])})"
            if row["ok"] < row["requests"]:
                cell += f" ⚠ {row['requests'] - row['ok']} failed"
            if row["short"]:
                cell += f" ({row['short']} short)"
            cells.append(cell)
        for a, b in pairs:
            cells.append(
                x(ratio(res.get(workload, a, c, "output_tok_s"), res.get(workload, b, c, "output_tok_s")))
            )
        lines.append(md_row(cells))
    if any(res.merged[k].get("short") for k in res.merged if k[0] == workload):
        lines += [
            "",
            "short: requests that stopped before max_tokens (a stop token where EOS could not be "
            "ignored); tok/s counts the tokens actually generated.",
        ]
    if any(res.merged[k].get("borrowed") for k in res.merged if k[0] == workload):
        lines += [
            "",
            "The engine rows here are the token-id measurement: the engine sees token ids either way.",
        ]
    return lines


def latency_table(res: Results, workload: str) -> list[str]:
    fronts = res.frontends(workload)
    lines = ["Latency (ms, median of repeats): TTFT p50 / p99, ITL p50 / p99, end-to-end p50:", ""]
    head = ["concurrency", *fronts]
    lines += md_head(head)
    hidden = False
    for c in res.concurrencies(workload):
        cells = [str(c)]
        for f in fronts:
            row = res.merged.get((workload, f, c))
            if row is None:
                cells.append("-")
                continue
            if row["ttft_p50_ms"] is None:
                hidden = True
            cells.append(
                f"TTFT {fmt(row['ttft_p50_ms'], 1)} / {fmt(row['ttft_p99_ms'], 1)}; "
                f"ITL {fmt(row['itl_p50_ms'], 2)} / {fmt(row['itl_p99_ms'], 2)}; e2e {fmt(row['e2e_p50_ms'])}"
            )
        lines.append(md_row(cells))
    if workload == "tokens":
        ratios = []
        for c in res.concurrencies(workload):
            e = ratio(
                res.get(workload, "grpc", c, "ttft_p50_ms"),
                res.get(workload, "engine", c, "ttft_p50_ms"),
            )
            v = ratio(
                res.get(workload, "grpc", c, "ttft_p50_ms"),
                res.get(workload, "vllm-serve", c, "ttft_p50_ms"),
            )
            ratios.append(f"c={c}: {x(e)} engine, {x(v)} vllm serve")
        lines += ["", "gRPC TTFT p50 ratios: " + "; ".join(ratios)]
    if hidden:
        lines += [
            "",
            "n/a: the stream carried no per-token output. With random (dummy) weights the model never "
            "closes a Harmony header, so both our parser and vLLM's hold every token back until the end; "
            "throughput (from usage) is exact, TTFT/ITL are not observable for chat on these weights.",
        ]
    return lines


def cpu_table(res: Results, workload: str) -> list[str]:
    cells = []
    for c in res.concurrencies(workload):
        parts = []
        for f in res.frontends(workload):
            cpu = res.get(workload, f, c, "server_cpu_cores") or {}
            if cpu and f != "engine":
                cores = res.cores_per_10k(workload, f, c)
                per_10k = f" = {cores:.2f} cores per 10k tok/s" if cores is not None else ""
                parts.append(f"{f}: " + ", ".join(f"{n} {v:.2f}" for n, v in cpu.items()) + per_10k)
        if parts:
            cells.append(f"- c={c}: " + "; ".join(parts))
    if not cells:
        return []
    return [
        "CPU cores used by the serving processes (not engine cores; smg: router + vLLM gRPC worker; vllm-serve-apiN: its API servers):",
        "",
        *cells,
    ]


def profiles(res: Results) -> list[str]:
    profiles = [p for d in res.details for p in d.get("profiles", [])]
    if not profiles:
        return []
    lines = ["", "## Where the serving processes spend time (py-spy, top concurrency, one extra run)"]
    for p in profiles:
        lines += [
            "",
            f"**{p['frontend']}/{p['workload']} c={p['concurrency']}, process `{p['process']}`**: "
            f"{p.get('samples', 0)} samples, {fmt(p.get('cpu_cores'), 2)} cores, "
            f"{fmt(p.get('output_tok_s_while_sampled'))} tok/s while sampled (raw: `{p.get('raw')}`).",
            "",
            "| file (self) | % | function (self) | % | function (inclusive) | % |",
            "|---|---:|---|---:|---|---:|",
        ]
        columns = [p.get("self_by_file_pct", []), p.get("self_pct", []), p.get("inclusive_pct", [])]
        for i in range(min(15, max(len(c) for c in columns))):
            cells = []
            for column in columns:
                name, pct = column[i] if i < len(column) else ("", "")
                cells += [f"`{name}`" if name else "", str(pct)]
            lines.append(md_row(cells))
    return lines


def cold_table(res: Results) -> list[str]:
    """The first burst on each freshly started server (`--cold-burst`) beside the same concurrency
    later in the run: the JIT stall a warm-up must remove shows as a first/later TTFT ratio."""
    if not res.cold:
        return []
    lines = [
        "",
        "## First burst after readiness (fresh server, no warm-up by the bench)",
        "",
        *md_head(
            [
                "frontend / workload",
                "streams",
                "output tokens",
                "tok/s",
                "TTFT p50",
                "TTFT p99",
                "later TTFT p50",
                "first / later",
            ]
        ),
    ]
    for p in sorted(res.cold, key=lambda p: (frontend_rank(p["frontend"]), p["workload"])):
        later = res.get(p["workload"], p["frontend"], p["concurrency"], "ttft_p50_ms")
        cells = [
            f"{p['frontend']} / {p['workload']}",
            str(p["concurrency"]),
            str(p.get("output_tokens", "")),
            fmt(p["output_tok_s"]),
            fmt(p.get("ttft_p50_ms"), 0, " ms"),
            fmt(p.get("ttft_p99_ms"), 0, " ms"),
            fmt(later, 0, " ms"),
            x(ratio(p.get("ttft_p50_ms"), later)),
        ]
        lines.append(md_row(cells))
    lines += ["", "later: the median TTFT p50 of the measured repeats at that concurrency (longer outputs)."]
    return lines
