"""Shared helpers for the reliability tests: metrics scraping, memory, error details, tallies."""

from __future__ import annotations

import collections
import contextlib
import ctypes
import gc

import grpc
import psutil
from google.rpc import error_details_pb2, status_pb2
from gptoss.contract import STATUS_DETAILS_KEY

from tests.support.prometheus import scrape, total

MiB = 1 << 20


def metric(url: str, name: str, **labels: str) -> float:
    return total(scrape(url), name, **labels)


def generate_codes(url: str) -> dict[str, float]:
    """The service's `gptoss_requests_total{method="Generate"}` by gRPC code."""
    return {
        labels["code"]: value
        for labels, value in scrape(url).get("gptoss_requests_total", [])
        if labels.get("method") == "Generate"
    }


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, int]:
    return {k: int(v - before.get(k, 0)) for k, v in after.items() if v - before.get(k, 0)}


def trim_heap() -> None:
    """Collect garbage and hand glibc's free pages back, so RSS reflects memory still in use."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def rss(pid: int | None = None) -> int:
    return int(psutil.Process(pid).memory_info().rss)


def descendants_rss(pid: int | None = None) -> dict[str, int]:
    """RSS of each live child process (vLLM EngineCore, Worker, ...) by process name."""
    sizes: dict[str, int] = collections.Counter()
    for child in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            sizes[child.name().removeprefix("VLLM::")] += child.memory_info().rss
    return dict(sizes)


def error_reason(error: grpc.RpcError) -> str:
    """The google.rpc.ErrorInfo reason of a status, or '' when it carries none."""
    trailing = dict(error.trailing_metadata() or ())  # type: ignore[attr-defined]
    details = trailing.get(STATUS_DETAILS_KEY)
    if not details:
        return ""
    status = status_pb2.Status.FromString(details)
    info = error_details_pb2.ErrorInfo()
    return info.reason if status.details and status.details[0].Unpack(info) else ""


REPORTED: list[str] = []  # printed again in the terminal summary (tests/reliability/conftest.py)


class Tally:
    """Outcome counts of one test, printed so the numbers land in the test log (-s / -rA)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.counts: collections.Counter[str] = collections.Counter()

    def add(self, outcome: str, n: int = 1) -> None:
        self.counts[outcome] += n

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def report(self, **extra: object) -> str:
        parts = [f"{k}={v}" for k, v in sorted(self.counts.items())]
        parts += [f"{k}={v}" for k, v in extra.items()]
        line = f"[reliability] {self.name}: tried={self.total} " + " ".join(parts)
        print(line)
        REPORTED.append(line)
        return line
