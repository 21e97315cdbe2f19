"""One extra point at the top concurrency with py-spy sampling the serving processes: where they
spend time. Kept out of the rows (the sampler costs throughput)."""

from __future__ import annotations

import asyncio
import subprocess

from bench import procstat, pyspy
from bench.loadgen import ClientPool, Progress
from bench.run_config import RunConfig
from bench.stats import summarize
from bench.sweep import Sweep
from bench.workload import WorkloadKind


async def profile_point(
    config: RunConfig,
    sweep: Sweep,
    frontend: str,
    workload: WorkloadKind,
    pool: ClientPool,
    pids: dict[str, int],
) -> None:
    """One extra point at the top concurrency with py-spy sampling the serving processes (not in rows)."""
    concurrency = max(config.concurrency)
    measured = [
        p["wall_s"]
        for p in sweep.recorder.data["points"]
        if p["frontend"] == frontend
        and p["workload"] == workload
        and p["concurrency"] == concurrency
        and p["wall_s"]
    ]
    if not measured or sweep.remaining() < 2 * measured[0] + 20:
        sweep.recorder.add(
            "notes", f"py-spy for {frontend}/{workload} skipped (no measured point or no time)"
        )
        return
    seconds = max(3.0, measured[0] - 2.0)
    recorders = {}
    for name, pid in pids.items():
        out = config.log_dir / f"pyspy-{frontend}-{workload}-{name}-c{concurrency}.txt"
        process = pyspy.record(pid, seconds, out)
        if process is None:
            sweep.recorder.add("notes", "py-spy not found: no profile")
            return
        recorders[name] = (process, out)
    await asyncio.sleep(0.5)
    streams = sweep.streams(concurrency, 1, config.output_tokens)
    progress = Progress(
        f"{frontend}/{workload} c={concurrency} under py-spy", concurrency, concurrency * config.output_tokens
    )
    meter = procstat.CpuMeter(pids)
    meter.start()
    limit_s = min(config.point_timeout, sweep.remaining())
    results = await asyncio.to_thread(pool.run, streams, limit_s, progress)
    cpu = meter.stop()
    for name, (process, out) in recorders.items():
        try:
            await asyncio.to_thread(process.wait, seconds + 30)
        except subprocess.TimeoutExpired:
            process.kill()
        summary = pyspy.summarize(out) if out.exists() else {}
        stats = summarize(results)
        sweep.recorder.add(
            "profiles",
            {
                "frontend": frontend,
                "workload": workload,
                "concurrency": concurrency,
                "process": name,
                "cpu_cores": cpu.get(name),
                "output_tok_s_while_sampled": stats["output_tok_s"],
                "raw": out.name,
                **summary,
            },
        )
        print(f"  py-spy {name}: {out} ({summary.get('samples', 0)} samples)", flush=True)
