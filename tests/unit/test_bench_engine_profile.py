"""bench.engine_profile reads py-spy's raw stacks of the engine core: the step loop's thread is the
one under `run_busy_loop`, whatever its name (MainThread on CPU, asyncio_0 on the H200)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from bench import engine_profile

LOOP = "thread (7): asyncio_0;run_busy_loop (vllm/v1/engine/core.py:1);EngineCore.step_with_batch_queue (core.py:2)"
RAW = "\n".join(
    [
        f"{LOOP};Scheduler.get_grammar_bitmask (sched.py:3);fill_next_token_bitmask (matcher.py:364) 30",
        f"{LOOP};GPUModelRunner.sample_tokens (runner.py:4);apply_grammar_bitmask (utils.py:126) 50",
        f"{LOOP};Scheduler.schedule (sched.py:5) 20",
        "thread (9): Thread-5 (process_output_sockets);process_output_sockets (core.py:6) 900",
    ]
)


@pytest.mark.parametrize("name", ["point.raw", "point.raw.gz"])
def test_shares_are_of_the_step_loops_samples(tmp_path: Path, name: str) -> None:
    raw = tmp_path / name
    raw.write_bytes(gzip.compress(RAW.encode()) if name.endswith(".gz") else RAW.encode())
    found = engine_profile.summary(raw)
    assert found["samples"] == 100  # the busier output thread is not the loop
    assert found["Scheduler.get_grammar_bitmask"] == 0.3 and found["sample_tokens"] == 0.5
    assert found["Scheduler.schedule"] == 0.2 and found["process_output_sockets"] == 0.0
    assert found["line apply_grammar_bitmask (utils.py:126)"] == 0.5


def test_no_step_loop_no_summary(tmp_path: Path) -> None:
    raw = tmp_path / "other.raw"
    raw.write_text("thread (1): MainThread;main (x.py:1) 10\n")
    assert engine_profile.summary(raw) == {}


def test_recording_without_a_folder_records_nothing() -> None:
    with engine_profile.recording(None, "point"):
        pass
