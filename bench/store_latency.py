"""Added latency of the response store: the same small Responses request, one at a time, through a
gateway process with the store off, on SQLite, and on Postgres; prints p50/p90 and the added p50.

    python -m bench.store_latency                      # throwaway Postgres via initdb (tests/support)
    python -m bench.store_latency --postgres-url postgresql://u@h/db --requests 500

The service runs a scripted instant engine (16 tokens) so the numbers isolate the gateway's work.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench import servers
from bench.inprocess import InProcessService, InstantEngine, instant_factory
from service.config import Settings
from service.probes import free_port

LOGS = Path(".tmp") / "bench-logs"


def _service() -> InProcessService:
    from service.harmony import tokens as tk

    piece = list(tk.encoding().encode(" wave", allowed_special="all"))
    head = list(tk.encoding().encode("<|channel|>final<|message|>", allowed_special="all"))
    factory = instant_factory(InstantEngine([head, *([piece] * 16)]))
    settings = Settings(profile="cpu-tiny", port=0, metrics_port=None)
    return InProcessService(settings, factory).start(ready_timeout=60)


def _measure(target: str, store_args: list[str], requests: int, chained: bool) -> list[float]:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "gateway",
        "--backend",
        target,
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    gateway = servers.Server("gateway", argv + store_args, {}, LOGS / "store-latency.log")
    url = f"http://127.0.0.1:{port}"
    try:
        servers.wait_http_ready(gateway, url + "/ready", 60)
        latencies = []
        with httpx.Client(base_url=url, timeout=30) as client:
            previous = None
            for i in range(requests + 20):
                body: dict[str, object] = {"model": "gpt-oss-tiny", "input": "Hello", "max_output_tokens": 32}
                if chained and previous is not None:
                    body["previous_response_id"] = previous
                started = time.perf_counter()
                answer = client.post("/v1/responses", json=body)
                elapsed = time.perf_counter() - started
                answer.raise_for_status()
                previous = answer.json()["id"] if i % 10 else None  # chains of 10 turns
                if i >= 20:  # warm-up done
                    latencies.append(elapsed * 1000)
        return latencies
    finally:
        gateway.stop()


def _row(name: str, ms: list[float], base: float | None) -> str:
    p50 = statistics.median(ms)
    p90 = statistics.quantiles(ms, n=10)[-1]
    added = f"{p50 - base:+.2f}" if base is not None else "-"
    return f"| {name} | {len(ms)} | {p50:.2f} | {p90:.2f} | {added} |"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--postgres-url", help="an existing database (default: a throwaway one)")
    args = parser.parse_args()
    service = _service()
    postgres = None
    try:
        url = args.postgres_url
        if url is None:
            from tests.support.postgres import Postgres, find_bin_dir

            bin_dir = find_bin_dir()
            if bin_dir is not None:
                postgres = Postgres(bin_dir).start()
                url = postgres.url
        with tempfile.TemporaryDirectory() as data:
            runs: list[tuple[str, list[str], bool]] = [
                ("store off", ["--no-store"], False),
                ("SQLite, store=true", ["--data-dir", data], False),
                ("SQLite, 10-turn chains", ["--data-dir", data], True),
            ]
            if url is not None:
                runs += [("Postgres, store=true", ["--store-url", url], False)]
                runs += [("Postgres, 10-turn chains", ["--store-url", url], True)]
            print("| store | requests | p50 ms | p90 ms | added p50 ms |\n|---|---|---|---|---|")
            base = None
            for name, store_args, chained in runs:
                ms = _measure(service.target, store_args, args.requests, chained)
                print(_row(name, ms, base), flush=True)
                base = statistics.median(ms) if base is None else base
    finally:
        if postgres is not None:
            postgres.close()
        service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
