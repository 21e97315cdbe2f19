"""Host time of the shaping processor's per-step index copy while the GPU is busy (issue 19).

`bench/shaped_output.py` forces each row of a decode batch to its next token. It sends the step's row
and token indices to the GPU. It used to build two tensors from Python lists (`torch.tensor(list,
device="cuda")`: pageable copies); it now builds one pinned host buffer and copies it non-blocking. A
pageable copy holds the host thread until the GPU has drained the work queued before it. In vLLM's
engine, with async scheduling, that host thread should be preparing the next step meanwhile.

Both ways run here behind the same queued GPU work (a chain of matmuls of about `--busy-ms`). Per call
it reports the host time, and the total time to a synchronize:

    python -m bench.index_copy_cost --rows 64 256 --out results.json     # on a GPU machine (torch only)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

VOCAB = 201088  # o200k_harmony


def pageable(rows: list[int], tokens: list[int], logits: torch.Tensor) -> None:
    index = torch.tensor(rows, dtype=torch.long, device=logits.device)
    logits[index] = float("-inf")
    logits[index, torch.tensor(tokens, dtype=torch.long, device=logits.device)] = 0.0


def pinned(rows: list[int], tokens: list[int], logits: torch.Tensor) -> None:
    host = torch.tensor(rows + tokens, dtype=torch.long)
    if logits.device.type == "cuda":
        host = host.pin_memory()
    both = host.to(logits.device, non_blocking=True)
    index, picked = both[: len(rows)], both[len(rows) :]
    logits[index] = float("-inf")
    logits[index, picked] = 0.0


def pinned_fill(rows: list[int], tokens: list[int], logits: torch.Tensor) -> None:
    """As `pinned`, but scalar fills: `logits[index] = value` copies the value to the GPU first."""
    host = torch.tensor(rows + tokens, dtype=torch.long)
    if logits.device.type == "cuda":
        host = host.pin_memory()
    both = host.to(logits.device, non_blocking=True)
    index, picked = both[: len(rows)], both[len(rows) :]
    logits.index_fill_(0, index, float("-inf"))
    logits.view(-1).index_fill_(0, index * logits.shape[1] + picked, 0.0)


def busy_chain(device: torch.device, busy_ms: float) -> Callable[[], None]:
    """A function that queues about `busy_ms` of GPU work (calibrated once) and returns at once."""
    a = torch.randn(4096, 4096, device=device)
    if device.type != "cuda":
        return lambda: None
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(10):
        a @ a
    torch.cuda.synchronize()
    per = (time.perf_counter() - start) / 10
    count = max(1, round(busy_ms / 1000 / per))

    def queue() -> None:
        for _ in range(count):
            a @ a

    return queue


def measure(rows: int, device: torch.device, busy_ms: float, repeats: int) -> dict[str, dict[str, float]]:
    logits = torch.zeros(rows, VOCAB, device=device)
    queue = busy_chain(device, busy_ms)
    row_ids, token_ids = list(range(rows)), [(7 * i) % VOCAB for i in range(rows)]
    out: dict[str, dict[str, float]] = {}
    for name, way in (("pageable", pageable), ("pinned", pinned), ("pinned_fill", pinned_fill)):
        host, total = [], []
        for _ in range(repeats + 3):  # 3 warm-up calls
            if device.type == "cuda":
                torch.cuda.synchronize()
            queue()
            start = time.perf_counter()
            way(row_ids, token_ids, logits)
            host.append(time.perf_counter() - start)
            if device.type == "cuda":
                torch.cuda.synchronize()
            total.append(time.perf_counter() - start)
        host, total = host[3:], total[3:]
        assert logits[rows - 1, token_ids[-1]].item() == 0.0
        assert logits[rows - 1].isinf().sum().item() == VOCAB - 1
        logits.zero_()
        out[name] = {
            "host_ms_p50": statistics.median(host) * 1000,
            "host_ms_max": max(host) * 1000,
            "to_sync_ms_p50": statistics.median(total) * 1000,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--busy-ms", type=float, default=10.0, help="GPU work queued before each call")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    result = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "busy_ms": args.busy_ms,
        "rows": {str(r): measure(r, device, args.busy_ms, args.repeats) for r in args.rows},
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
