"""Throughput and TTFT plots per workload (matplotlib, optional: without it there are no plots)."""

from __future__ import annotations

from bench.aggregate import Results

COLORS = {
    "engine": "#4c4c4c",
    "grpc": "#1f77b4",
    "gateway": "#2ca02c",
    "vllm-serve": "#d62728",
    "smg": "#9467bd",
}


def plot(res: Results) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    meta = res.details[0]["meta"]
    for workload in res.workloads:
        for metric, label, name in (
            ("output_tok_s", "output tokens / s", "throughput"),
            ("ttft_p50_ms", "TTFT p50 (ms)", "ttft"),
        ):
            fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
            drawn = False
            for frontend in res.frontends(workload):
                xs, ys = [], []
                for c in res.concurrencies(workload):
                    value = res.get(workload, frontend, c, metric)
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
            ax.set_xticks(res.concurrencies(workload))
            ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
            if metric == "ttft_p50_ms":
                ax.set_yscale("log")
            ax.set_xlabel("concurrent streams")
            ax.set_ylabel(label)
            ax.set_title(f"{label} — {workload} — {meta['engine']}, {meta['machine']}", fontsize=9)
            ax.grid(True, alpha=0.3)
            ax.legend()
            fig.tight_layout()
            fig.savefig(res.folder / f"{name}-{workload}.png")
            plt.close(fig)
