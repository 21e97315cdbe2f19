"""The soak's markdown report, from the data written beside it as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_markdown(path: Path, data: dict[str, Any]) -> None:
    lines = [
        f"# Soak {data['started_utc']}",
        "",
        f"**Verdict: {'PASS' if data['passed'] else 'FAIL'}** - {data['verdict']}",
        "",
        f"- duration {data['duration_s']} s of mixed load (warm-up {data['warm_up_s']} s), concurrency "
        f"{data['concurrency']}, profile `cpu-tiny`, {data['cpu_count']} CPUs",
        f"- requests: {data['requests']} ({data['requests_per_s']}/s), unexpected outcomes: {len(data['unexpected'])}",
        f"- after the load: engine requests {data['engine_after']}, active streams {data['active_streams_after']}",
        f"- exit status after SIGTERM: {data['exit_status']} (`python -m service.stack`: the service drains, "
        "then the gateway stops; 0 when both ended cleanly)",
        "",
        "## Memory (RSS, MiB) from the end of the warm-up to the end of the run",
        "",
        "| process | start | end | growth | 1st half | 2nd half | slope MiB/min | peak | allowance |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, g in data["memory"].items():
        lines.append(
            f"| {name} | {g['start_mib']} | {g['end_mib']} | {g['growth_mib']:+} | {g['growth_first_half_mib']:+} "
            f"| {g['growth_second_half_mib']:+} | {g['slope_mib_per_min']:+} | {g['peak_mib']} | {g['allowance_mib']} |"
        )
    lines += ["", "## Outcomes", "", "| kind | outcome | count |", "|---|---|---:|"]
    for key, count in sorted(data["outcomes"].items()):
        kind, outcome = key.split(" -> ")
        lines.append(f"| {kind} | {outcome} | {count} |")
    if data["unexpected"]:
        lines += ["", "## Unexpected", "", *(f"- `{u}`" for u in data["unexpected"][:20])]
    lines += ["", "## RSS samples (every ~30 s)", ""]
    names = list(data["memory"]) or ["server"]
    lines += ["| t (s) | requests | active | " + " | ".join(names) + " |", "|---:" * (3 + len(names)) + "|"]
    step = max(1, round(30 / data["sample_every_s"]))
    for sample in data["samples"][::step] + data["samples"][-1:]:
        rss = " | ".join(str(sample["rss_mib"].get(n, "")) for n in names)
        lines.append(f"| {sample['t']} | {sample['requests']} | {sample.get('active_streams', '')} | {rss} |")
    path.write_text("\n".join(lines) + "\n")
