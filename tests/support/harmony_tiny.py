"""Build the trained tiny model on demand, so `pytest` alone works on a fresh clone."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from service.config import REPO_ROOT


@functools.cache
def ensure_harmony_tiny() -> Path:
    """What `make model` runs (models/harmony-tiny/build.py): trains only if missing or stale."""
    spec = importlib.util.spec_from_file_location(
        "harmony_tiny_build", REPO_ROOT / "models" / "harmony-tiny" / "build.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built: Path = module.ensure_model()
    return built
