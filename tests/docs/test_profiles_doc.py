"""docs/operations.md's profile-by-machine table is what the service picks, with KV numbers
recomputed from the GPU sizes and the measured weights."""

from __future__ import annotations

import re

from service.gpus import Gpu, profile_for
from tests.docs.snippets import REPO

DOC = (REPO / "docs" / "operations.md").read_text()
GPU_MIB = {"H100": 81_559, "H200": 143_771, "B200": 183_359}  # nvidia-smi memory.total
WEIGHTS_GIB = {1: 61.5, 4: 16.35}  # per GPU: 1x H200 at TP=1, 4x H100 at TP=4 (measured)
KV_BYTES_PER_TOKEN = {1: 18_432, 4: 4_608}  # 18 full-attention layers x K,V x 8/TP heads x 64 x fp8
ROW = re.compile(r"^\| (\d)x (H100|H200|B200)[^|]*\| `([a-z0-9-]+)` \| ([\d.]+) GiB[^|]*\| ([\d,]+)", re.M)


def test_every_machine_row_is_the_profile_the_service_picks() -> None:
    rows = ROW.findall(DOC)
    assert {(int(count), gpu) for count, gpu, *_ in rows} == {(n, g) for n in (1, 4) for g in GPU_MIB}
    for count, gpu, profile, kv_gib, sequences in rows:
        n = int(count)
        assert profile_for([Gpu(i, GPU_MIB[gpu] << 20) for i in range(n)]).profile == profile, (count, gpu)
        expected_kv = 0.95 * GPU_MIB[gpu] / 1024 - WEIGHTS_GIB[n]
        assert kv_gib == f"{expected_kv:.2f}", (count, gpu)
        tokens = expected_kv * (1 << 30) / KV_BYTES_PER_TOKEN[n]
        assert sequences == f"{round(tokens / (8192 + 144)):,}", (count, gpu)


def test_the_connection_age_claim_matches_the_setting() -> None:
    assert "`--max-connection-age-seconds`" in DOC
    assert "sets no maximum connection age" not in DOC and "Until the service sets it" not in DOC
