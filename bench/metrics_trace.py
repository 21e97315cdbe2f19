"""`python -m bench.metrics_trace URL OUT`: our service's engine gauges, sampled every 0.2 s, one
line per sample (unix time, running, waiting, KV use, streams in flight, admission queue), until it
is killed. Beside the points' start times it shows what a stalled burst was waiting on: requests
not yet admitted (queue), admitted but not yet in the engine (streams up, running 0), or queued in
the engine's scheduler (waiting)."""

from __future__ import annotations

import sys
import time
import urllib.request
from pathlib import Path

GAUGES = (
    "gptoss_engine_requests_running",
    "gptoss_engine_requests_waiting",
    "gptoss_engine_kv_cache_usage_ratio",
    "gptoss_active_streams",
    "gptoss_admission_queue_depth",
)


def sample(url: str) -> list[str]:
    values = dict.fromkeys(GAUGES, "")
    with urllib.request.urlopen(url, timeout=2) as response:
        for line in response.read().decode().splitlines():
            name, _, value = line.partition(" ")
            if name in values:
                values[name] = value
    return list(values.values())


def main(url: str, out: Path) -> None:
    with out.open("a") as file:
        file.write("unix " + " ".join(GAUGES) + "\n")
        while True:
            started = time.time()
            try:
                file.write(f"{started:.2f} " + " ".join(sample(url)) + "\n")
            except OSError as error:
                file.write(f"{started:.2f} error {error}\n")
            file.flush()
            time.sleep(max(0.0, 0.2 - (time.time() - started)))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
