"""Profiles: named sets of engine and serving values, as data. Anything set explicitly wins.

`service.config.Settings` fills what a flag, the environment or a settings file leaves unset
from the chosen profile; `service/gpus.py` picks one from the GPUs present when none is named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY_MODEL_DIR = REPO_ROOT / "models" / "tiny-gpt-oss"
# Built by `make model` (models/harmony-tiny/build.py): the tiny architecture with trained weights.
HARMONY_TINY_DIR = REPO_ROOT / "models" / "harmony-tiny" / "build"

ProfileName = Literal["cpu-tiny", "cpu-tiny-random", "gpt-oss-20b", "gpt-oss-120b", "gpt-oss-120b-tp4"]

# The seed deployment's engine and serving flags, shared by the GPU profiles.
_SEED_SERVING: dict[str, Any] = {
    "max_model_len": 8192,
    "max_num_seqs": 256,
    "max_num_batched_tokens": 8192,
    "gpu_memory_utilization": 0.95,
    "kv_cache_dtype": "fp8",
    "async_scheduling": True,
    # Like the seed's `vllm serve --stream-interval 20`: first token at once, then 20-token deltas ...
    "stream_interval": 20,
    # ... except the first 4: a reply's first header (`<|channel|>analysis<|message|>`) is 3 tokens, so
    # its first text token streams at once (service/vllm_stream_ramp.py).
    "stream_ramp_tokens": 4,
    "max_concurrent_requests": 256,
    # Harmony rendering of long prompts off the gRPC event loop (service/prompt_renderer.py).
    "render_workers": 4,
}

# The CPU engine's values, shared by both tiny profiles.
_CPU_TINY_SERVING: dict[str, Any] = {
    "served_model_name": "gpt-oss-tiny",
    "dtype": "float32",
    "max_model_len": 4096,
    "max_num_seqs": 64,
    "max_num_batched_tokens": 4096,
    "kv_cache_memory_bytes": 1 << 30,
    "max_concurrent_requests": 64,
    "engine_env": {"VLLM_CPU_KVCACHE_SPACE": "1"},
    # The batch-range warm-up (service/warmup.py) is for the GPU's Triton JIT; on the CPU engine it
    # only adds start time (64 x 1001-token prompts) to every test engine start.
    "warmup": False,
}

# Engine and serving values per profile; anything set explicitly (flag, env, file) wins.
PROFILES: dict[str, dict[str, Any]] = {
    # Trained weights that speak Harmony (models/harmony-tiny/README.md: its fixed behaviour). It
    # was trained on prompts without a date line, so this profile renders none by default.
    "cpu-tiny": {
        "model": str(HARMONY_TINY_DIR),
        "load_format": "auto",
        "include_conversation_date": False,
        **_CPU_TINY_SERVING,
    },
    # Random weights (never closes a Harmony header): for fuzzing and raw-token benchmarks.
    "cpu-tiny-random": {
        "model": str(TINY_MODEL_DIR),
        "load_format": "dummy",
        **_CPU_TINY_SERVING,
    },
    "gpt-oss-20b": {
        "model": "openai/gpt-oss-20b",
        "served_model_name": "gpt-oss-20b",
        **_SEED_SERVING,
    },
    # One 80 GB+ GPU (H100, H200, B200): measured on 1x H200, 61.5 GiB of weights, 69 GiB KV cache at 0.95.
    "gpt-oss-120b": {
        "model": "openai/gpt-oss-120b",
        "served_model_name": "gpt-oss-120b",
        **_SEED_SERVING,
        "engine_env": {"VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8": "1"},
    },
    "gpt-oss-120b-tp4": {
        "model": "openai/gpt-oss-120b",
        "served_model_name": "gpt-oss-120b",
        "tensor_parallel_size": 4,
        **_SEED_SERVING,
        # Only read by vLLM on Blackwell (B200): the MXFP4 x MXFP8 FlashInfer MoE kernels.
        "engine_env": {"VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8": "1"},
    },
}
