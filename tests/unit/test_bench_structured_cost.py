"""bench/structured_cost.py without an engine: the matched arm's lengths and the cost ratios."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from google.protobuf.duration_pb2 import Duration
from gptoss.v1 import inference_pb2 as pb

from bench import structured_cost


class LengthStub:
    """Answers Generate like random weights: free text runs to max_tokens, an enforced answer
    stops early, at a length set by the request's arrival order."""

    def __init__(self) -> None:
        self.requests: list[pb.GenerateRequest] = []
        self.answered: list[int] = []  # completion tokens, in the order of self.requests
        self._lock = threading.Lock()

    def Generate(self, request: pb.GenerateRequest, timeout: float) -> list[pb.GenerateResponse]:
        enforced = request.HasField("response_format") and request.response_format.json_schema.strict
        with self._lock:
            tokens = 1 + len(self.requests) % 7 if enforced else request.max_tokens
            self.requests.append(request)
            self.answered.append(tokens)
        timings = pb.Timings(
            time_to_first_token=Duration(nanos=5_000_000),
            decode_time=Duration(nanos=1_000_000 * tokens),
            total=Duration(nanos=1_000_000 * (tokens + 5)),
        )
        done = pb.Done(usage=pb.Usage(completion_tokens=tokens), timings=timings)
        return [pb.GenerateResponse(done=done)]


def test_the_matched_arm_asks_for_the_lengths_its_enforced_twin_answered_with() -> None:
    stub = LengthStub()
    arms = ["long-rendered", "long-enforced", "long-matched"]
    points = structured_cost.sweep(stub, [2], arms, per_stream=3, max_tokens=40, repeats=2)
    assert [(p["arm"], p["repeat"]) for p in points] == [(a, r) for r in (1, 2) for a in arms]
    for repeat in (1, 2):
        enforced, matched = (
            next(p for p in points if p["arm"] == a and p["repeat"] == repeat) for a in arms[1:]
        )
        assert matched["mean_tokens"] == matched["mean_tokens_twin"] == enforced["mean_tokens"] < 40
    # Each point's 6 requests, in the order of the points: rendered, enforced, matched, twice.
    chunks = [list(zip(stub.requests, stub.answered, strict=True))[i : i + 6] for i in range(0, 36, 6)]
    for rendered, enforced, matched in (chunks[0:3], chunks[3:6]):
        assert [request.max_tokens for request, _ in rendered] == [40] * 6
        assert sorted(request.max_tokens for request, _ in matched) == sorted(
            tokens for _, tokens in enforced
        )
        assert not any(request.response_format.json_schema.strict for request, _ in matched)  # no grammar
    assert not any(request.seed for request in stub.requests)  # vLLM samples seeded requests one by one


def test_a_points_requests_are_capped_but_never_below_one_per_stream() -> None:
    stub = LengthStub()
    points = structured_cost.sweep(stub, [4, 8], ["long-rendered"], 2, 10, max_requests=6)
    assert [p["requests"] for p in points] == [6, 8]


def _point(streams: int, arm: str, repeat: int, decode: float, output: float) -> dict[str, Any]:
    return {
        "streams": streams,
        "arm": arm,
        "repeat": repeat,
        "decode_tok_s_per_stream_p50": decode,
        "output_tok_s": output,
    }


def test_costs_are_the_median_over_repeats_of_each_repeats_ratio() -> None:
    points = [
        _point(64, "long-matched", 1, 100.0, 1000.0),
        _point(64, "long-enforced", 1, 80.0, 900.0),
        _point(64, "long-matched", 2, 100.0, 1000.0),
        _point(64, "long-enforced", 2, 90.0, 950.0),
        _point(64, "long-matched", 3, 50.0, 1000.0),
        _point(64, "long-enforced", 3, 49.0, 1000.0),
        _point(64, "long-rendered", 1, 120.0, 1200.0),
    ]
    (row,) = structured_cost.costs(points)
    assert row["decode_tok_s_per_stream_p50_vs_long-matched"] == pytest.approx(-0.1)  # -20%, -10%, -2%
    assert row["output_tok_s_vs_long-matched"] == pytest.approx(-0.05)
    assert row["decode_tok_s_per_stream_p50_vs_long-rendered"] == pytest.approx(80 / 120 - 1)  # repeat 1 only


def test_the_matched_arm_must_follow_its_twin() -> None:
    with pytest.raises(SystemExit):
        structured_cost.main(["--arms", "long-matched", "long-enforced"])
