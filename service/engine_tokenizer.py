"""Which tokenizer the engine loads: vLLM's structured output (xgrammar) needs the vocabulary.

We still feed token ids and never let vLLM detokenize; the tokenizer is only read for the grammar's
token table. Dummy-weight config directories have none, so the offline o200k_harmony files
(service/harmony/tokenizer_files.py, no download) are generated once into a cache directory.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from service.config import Settings


def tokenizer_dir(settings: Settings) -> str:
    """The tokenizer: the setting; else the model's own (a hub id or a directory with one); else,
    for dummy-weight config directories, the offline o200k_harmony files in a cache directory."""
    if settings.tokenizer:
        return settings.tokenizer
    model = Path(settings.model)
    if not model.is_dir() or (model / "tokenizer.json").exists():
        return settings.model
    return str(offline_tokenizer(settings.tokenizer_cache_dir))


def offline_tokenizer(cache_dir: str) -> Path:
    """o200k_harmony written once per cache (a few seconds), atomically: parallel starts agree."""
    target = Path(cache_dir).expanduser() / "o200k_harmony"
    if (target / "tokenizer.json").exists():
        return target
    from service.harmony.tokenizer_files import build_tokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="o200k_harmony.", dir=target.parent))
    build_tokenizer(staging)
    try:
        staging.rename(target)
    except OSError:  # another process won the race: its files are the same
        shutil.rmtree(staging, ignore_errors=True)
    return target
