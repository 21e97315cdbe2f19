"""Rows, a markdown report with ratios and targets, and plots, from the `detail-*.json` of one run.

All ratios are computed from points measured in the same run (one machine, one session).
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

FRONTEND_ORDER = ("engine", "grpc", "gateway", "vllm-serve")
COLORS = {"engine": "#4c4c4c", "grpc": "#1f77b4", "gateway": "#2ca02c", "vllm-serve": "#d62728"}
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
WORKLOAD_TITLES = {
    "tokens": "token-id prompts (engine / raw gRPC / `vllm serve` `/v1/completions`)",
    "chat": "chat messages, Harmony on both sides (gRPC / gateway / `vllm serve` `/v1/chat/completions`)",
}

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
    selected.sort(key=lambda r: (FRONTEND_ORDER.index(r["frontend"]), r["concurrency"]))
    return [{k: row[k] for k in ROW_KEYS} for row in selected]


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _fmt(value: float | None, digits: int = 0, suffix: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}{suffix}"


def _x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


class Report:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.details, points = load(folder)
        self.points = [p for p in points if p["ok"] > 0]
        self.failed = [p for p in points if p["ok"] == 0]
        self.merged = aggregate(self.points)
        self.workloads = [w for w in ("tokens", "chat") if any(k[0] == w for k in self.merged)]

    def get(self, workload: str, frontend: str, concurrency: int, key: str) -> Any:
        row = self.merged.get((workload, frontend, concurrency))
        return None if row is None else row.get(key)

    def concurrencies(self, workload: str) -> list[int]:
        return sorted({k[2] for k in self.merged if k[0] == workload})

    def frontends(self, workload: str) -> list[str]:
        present = {k[1] for k in self.merged if k[0] == workload}
        return [f for f in FRONTEND_ORDER if f in present]

    # -- targets ---------------------------------------------------------------------------------

    def targets(self) -> list[tuple[str, str, str]]:
        """(target, measured, verdict) for every target the data can answer."""
        out: list[tuple[str, str, str]] = []
        for workload in self.workloads:
            concs = self.concurrencies(workload)
            if not concs:
                continue
            high = [c for c in concs if c >= 64] or concs[-3:]
            top = concs[-1]
            mid = 64 if 64 in concs else concs[len(concs) // 2]
            tag = f"[{workload}]"
            sweep = self._sweep_target  # one ratio per concurrency, one verdict for them all
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
            r = _ratio(
                self.get(workload, "grpc", top, "output_tok_s"),
                self.get(workload, "vllm-serve", top, "output_tok_s"),
            )
            if r is not None:
                out.append((f"{tag} gRPC ≥ 1.10x vllm serve tok/s at {top}", _x(r), _verdict(r >= 1.10)))
            r = _ratio(
                self.get(workload, "grpc", mid, "ttft_p50_ms"),
                self.get(workload, "vllm-serve", mid, "ttft_p50_ms"),
            )
            if r is not None:
                out.append((f"{tag} gRPC TTFT p50 ≤ 0.8x vllm serve at {mid}", _x(r), _verdict(r <= 0.8)))
            label = "gateway ≥ 1.0x vllm serve tok/s at every concurrency"
            out += sweep(workload, "gateway", "vllm-serve", "output_tok_s", concs, label, 1.0)
        return out

    # -- markdown --------------------------------------------------------------------------------

    def _sweep_target(
        self,
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
            c: _ratio(self.get(workload, frontend, c, key), self.get(workload, baseline, c, key))
            for c in concs
        }
        if all(r is None for r in ratios.values()):
            return []
        higher_is_better = key.endswith("tok_s")
        met = all(r is not None and (r >= bound if higher_is_better else r <= bound) for r in ratios.values())
        detail = ", ".join(f"c={c}: {_x(r)}" for c, r in ratios.items())
        return [(f"[{workload}] {label}", detail, _verdict(met))]

    def markdown(self) -> str:
        meta = self.details[0]["meta"]
        machines = sorted({d["meta"]["machine"] for d in self.details})
        lines = [
            f"# Frontend benchmark: {meta['engine']} on {', '.join(machines)}, {meta['date']}",
            "",
            "Generated by `python -m bench report` from the `detail-*.json` beside this file; rows in "
            "`rows-<workload>.json`. Every ratio compares points measured in this run on this machine.",
            "",
            "## Setup",
            "",
            *self._setup(),
        ]
        for workload in self.workloads:
            lines += ["", f"## Workload: {WORKLOAD_TITLES[workload]}", "", *self._throughput_table(workload)]
            lines += ["", *self._latency_table(workload), "", *self._cpu_table(workload)]
            lines += self._plots(workload)
        targets = self.targets()
        if targets:
            lines += ["", "## Targets (ratios from this run)", "", "| target | measured | |", "|---|---|---|"]
            lines += [f"| {t} | {m} | {v} |" for t, m, v in targets]
        lines += self._profiles()
        notes = [n for d in self.details for n in d.get("notes", [])]
        failed: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for p in self.failed:
            failed[(p["frontend"], p["workload"])].append(p)
        for (frontend, workload), group in failed.items():
            errors = sorted({e for p in group for e in p.get("errors", [])})
            concs = sorted({p["concurrency"] for p in group})
            notes.append(
                f"{frontend}/{workload}: every request failed at concurrency {concs} (left out of the tables): "
                + "; ".join(f"`{e}`" for e in errors)
            )
        if notes:
            lines += ["", "## Run notes", "", *[f"- {n}" for n in notes]]
        extra = self.folder / "notes.md"
        if extra.is_file():
            lines += ["", extra.read_text().rstrip()]
        return "\n".join(lines) + "\n"

    def _setup(self) -> list[str]:
        meta = self.details[0]["meta"]
        work = meta["workload"]
        args = ", ".join(f"{k}={v}" for k, v in meta["engine_args"].items())
        servers = {k: v for d in self.details for k, v in d.get("servers", {}).items()}
        starts = ", ".join(f"{k} {v['start_s']:.0f}s" for k, v in servers.items())
        loads = [
            f"{d['meta']['group']}: {d['meta'].get('load_average_start')} → {d['meta'].get('load_average_end')}"
            for d in self.details
        ]
        return [
            f"- machine: {', '.join(sorted({d['meta']['machine'] for d in self.details}))} ({meta['cpus']} CPUs); "
            f"engine: {meta['engine']}; profile `{meta['profile']}`",
            f"- engine arguments (identical for all four frontends): {args}",
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

    def _throughput_table(self, workload: str) -> list[str]:
        fronts = self.frontends(workload)
        head = ["concurrency", *[f"{f} tok/s" for f in fronts]]
        pairs = [("grpc", "engine"), ("gateway", "engine"), ("grpc", "vllm-serve"), ("gateway", "vllm-serve")]
        pairs = [(a, b) for a, b in pairs if a in fronts and b in fronts]
        head += [f"{a} / {b}" for a, b in pairs]
        lines = ["Output tokens per second (median of repeats; spread min-max where repeated):", ""]
        lines += _md_head(head)
        for c in self.concurrencies(workload):
            cells = [str(c)]
            for f in fronts:
                row = self.merged.get((workload, f, c))
                if row is None:
                    cells.append("-")
                    continue
                cell = _fmt(row["output_tok_s"])
                if row["repeats"] > 1:
                    cell += f" ({_fmt(row['tok_s_min'])}-{_fmt(row['tok_s_max'])})"
                if row["ok"] < row["requests"]:
                    cell += f" ⚠ {row['requests'] - row['ok']} failed"
                if row["short"]:
                    cell += f" ({row['short']} short)"
                cells.append(cell)
            for a, b in pairs:
                cells.append(
                    _x(
                        _ratio(
                            self.get(workload, a, c, "output_tok_s"), self.get(workload, b, c, "output_tok_s")
                        )
                    )
                )
            lines.append(_md_row(cells))
        if any(self.merged[k].get("short") for k in self.merged if k[0] == workload):
            lines += [
                "",
                "short: requests that stopped before max_tokens (a stop token where EOS could not be "
                "ignored); tok/s counts the tokens actually generated.",
            ]
        if any(self.merged[k].get("borrowed") for k in self.merged if k[0] == workload):
            lines += [
                "",
                "The engine rows here are the token-id measurement: the engine sees token ids either way.",
            ]
        return lines

    def _latency_table(self, workload: str) -> list[str]:
        fronts = self.frontends(workload)
        lines = ["Latency (ms, median of repeats): TTFT p50 / p99, ITL p50 / p99, end-to-end p50:", ""]
        head = ["concurrency", *fronts]
        lines += _md_head(head)
        hidden = False
        for c in self.concurrencies(workload):
            cells = [str(c)]
            for f in fronts:
                row = self.merged.get((workload, f, c))
                if row is None:
                    cells.append("-")
                    continue
                if row["ttft_p50_ms"] is None:
                    hidden = True
                cells.append(
                    f"TTFT {_fmt(row['ttft_p50_ms'], 1)} / {_fmt(row['ttft_p99_ms'], 1)}; "
                    f"ITL {_fmt(row['itl_p50_ms'], 2)} / {_fmt(row['itl_p99_ms'], 2)}; e2e {_fmt(row['e2e_p50_ms'])}"
                )
            lines.append(_md_row(cells))
        if workload == "tokens":
            ratios = []
            for c in self.concurrencies(workload):
                e = _ratio(
                    self.get(workload, "grpc", c, "ttft_p50_ms"),
                    self.get(workload, "engine", c, "ttft_p50_ms"),
                )
                v = _ratio(
                    self.get(workload, "grpc", c, "ttft_p50_ms"),
                    self.get(workload, "vllm-serve", c, "ttft_p50_ms"),
                )
                ratios.append(f"c={c}: {_x(e)} engine, {_x(v)} vllm serve")
            lines += ["", "gRPC TTFT p50 ratios: " + "; ".join(ratios)]
        if hidden:
            lines += [
                "",
                "n/a: the stream carried no per-token output. With random (dummy) weights the model never "
                "closes a Harmony header, so both our parser and vLLM's hold every token back until the end; "
                "throughput (from usage) is exact, TTFT/ITL are not observable for chat on these weights.",
            ]
        return lines

    def _cpu_table(self, workload: str) -> list[str]:
        cells = []
        for c in self.concurrencies(workload):
            parts = []
            for f in self.frontends(workload):
                cpu = self.get(workload, f, c, "server_cpu_cores") or {}
                if cpu and f != "engine":
                    parts.append(f"{f}: " + ", ".join(f"{n} {v:.2f}" for n, v in cpu.items()))
            if parts:
                cells.append(f"- c={c}: " + "; ".join(parts))
        if not cells:
            return []
        return [
            "CPU cores used by the serving processes (main process only, not engine workers):",
            "",
            *cells,
        ]

    def _plots(self, workload: str) -> list[str]:
        lines = []
        for name in (f"throughput-{workload}.png", f"ttft-{workload}.png"):
            if (self.folder / name).is_file():
                lines += ["", f"![{name}]({name})"]
        return lines

    def _profiles(self) -> list[str]:
        profiles = [p for d in self.details for p in d.get("profiles", [])]
        if not profiles:
            return []
        lines = ["", "## Where the serving processes spend time (py-spy, top concurrency, one extra run)"]
        for p in profiles:
            lines += [
                "",
                f"**{p['frontend']}/{p['workload']} c={p['concurrency']}, process `{p['process']}`**: "
                f"{p.get('samples', 0)} samples, {_fmt(p.get('cpu_cores'), 2)} cores, "
                f"{_fmt(p.get('output_tok_s_while_sampled'))} tok/s while sampled (raw: `{p.get('raw')}`).",
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
                lines.append(_md_row(cells))
        return lines

    # -- outputs ---------------------------------------------------------------------------------

    def plot(self) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        meta = self.details[0]["meta"]
        for workload in self.workloads:
            for metric, label, name in (
                ("output_tok_s", "output tokens / s", "throughput"),
                ("ttft_p50_ms", "TTFT p50 (ms)", "ttft"),
            ):
                fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
                drawn = False
                for frontend in self.frontends(workload):
                    xs, ys = [], []
                    for c in self.concurrencies(workload):
                        value = self.get(workload, frontend, c, metric)
                        if value is not None:
                            xs.append(c)
                            ys.append(value)
                    if xs:
                        ax.plot(xs, ys, marker="o", label=frontend, color=COLORS.get(frontend))
                        drawn = True
                if not drawn:
                    plt.close(fig)
                    continue
                ax.set_xscale("log", base=2)
                ax.set_xticks(self.concurrencies(workload))
                ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
                if metric == "ttft_p50_ms":
                    ax.set_yscale("log")
                ax.set_xlabel("concurrent streams")
                ax.set_ylabel(label)
                ax.set_title(f"{label} — {workload} — {meta['engine']}, {meta['machine']}", fontsize=9)
                ax.grid(True, alpha=0.3)
                ax.legend()
                fig.tight_layout()
                fig.savefig(self.folder / f"{name}-{workload}.png")
                plt.close(fig)

    def write(self, plots: bool = True) -> Path:
        for workload in self.workloads:
            (self.folder / f"rows-{workload}.json").write_text(
                json.dumps(rows(self.merged, workload), indent=1) + "\n"
            )
        if plots:
            try:
                self.plot()
            except ImportError:
                print("matplotlib is not installed: no plots (pip install matplotlib)")
        path = self.folder / "report.md"
        path.write_text(self.markdown())
        return path


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def write_report(folder: Path, plots: bool = True) -> Path:
    return Report(folder).write(plots)


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _md_head(head: Sequence[str]) -> list[str]:
    """A markdown table's header row and its separator, every column right-aligned."""
    return [_md_row(head), "|" + "---:|" * len(head)]
