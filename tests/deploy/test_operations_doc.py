"""docs/operations.md stays true: its KV-cache arithmetic is recomputed from the model config, and
every variable, port and overlay the deployments use is documented."""

from __future__ import annotations

import json
import math

from tests.deploy.helpers import OVERLAYS, REPO, SHARED_MODELS, truss_spec
from tests.deploy.test_env_contract import deployed_envs

DOC = (REPO / "docs" / "operations.md").read_text()
GIB = 1 << 30
WEIGHTS_GIB_PER_GPU = 16.35  # measured at TP=4 on 4x H100 (shared/gpu/README.md)
GPU_MIB = {"H100": 81_559, "B200": 183_359}  # nvidia-smi totals: H100 80GB HBM3, B200
TP, UTILIZATION, KV_BYTES, BLOCK, MAX_NUM_SEQS, MAX_MODEL_LEN = 4, 0.95, 1, 16, 256, 8192


def model() -> dict[str, object]:
    return dict(json.loads((SHARED_MODELS / "gpt-oss-120b" / "config.json").read_text()))


def per_token_bytes() -> int:
    config = model()
    layer_types = list(config["layer_types"])  # type: ignore[call-overload]
    full = layer_types.count("full_attention")
    kv_heads_per_gpu = int(config["num_key_value_heads"]) // TP  # type: ignore[call-overload]
    return full * 2 * kv_heads_per_gpu * int(config["head_dim"]) * KV_BYTES  # type: ignore[call-overload]


def test_layer_split_and_bytes_per_token() -> None:
    config = model()
    layer_types = list(config["layer_types"])  # type: ignore[call-overload]
    full, sliding = layer_types.count("full_attention"), layer_types.count("sliding_attention")
    assert full + sliding == config["num_hidden_layers"]
    assert f"**{full} full + {sliding} sliding**" in DOC
    assert f"**{per_token_bytes():,} B per token per GPU**" in DOC
    window_tokens = (math.ceil(int(config["sliding_window"]) / BLOCK) + 1) * BLOCK  # type: ignore[call-overload]
    assert (
        f"**{window_tokens} tokens' worth, {window_tokens * per_token_bytes() // 1024} KiB per sequence"
        in DOC
    )


def test_capacity_table() -> None:
    for gpu, mib in GPU_MIB.items():
        kv_gib = UTILIZATION * mib / 1024 - WEIGHTS_GIB_PER_GPU
        tokens = kv_gib * GIB / per_token_bytes()
        assert f"**{kv_gib:.2f} GiB**" in DOC, gpu
        assert f"**{tokens / 1e6:.2f} M tokens**" in DOC, gpu
        assert f"{round(tokens / (MAX_MODEL_LEN + 144)):,}" in DOC, gpu


def test_seed_demand() -> None:
    tokens = MAX_NUM_SEQS * (MAX_MODEL_LEN + 144)
    assert f"{tokens:,} tokens" in DOC
    assert f"**{tokens * per_token_bytes() / GIB:.2f} GiB per GPU**" in DOC


def test_every_deployed_variable_is_documented() -> None:
    names = set()
    for env in deployed_envs().values():
        names |= set(env)
    names |= set(truss_spec().config.environment_variables)
    names -= {"PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PIP_DISABLE_PIP_VERSION_CHECK", "HOME"}
    missing = sorted(name for name in names if f"`{name}" not in DOC)
    assert not missing, missing


def test_ports_and_overlays_are_documented() -> None:
    for port in ("50051", "9400", "8000", "8080"):
        assert port in DOC
    for overlay in OVERLAYS:
        assert f"overlays/{overlay}" in DOC or f"`{overlay}`" in DOC
