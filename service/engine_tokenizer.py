"""The engine's tokenizer: xgrammar's token table, with Harmony's control tokens kept out of text.

vLLM's structured output (xgrammar) needs the vocabulary; we still feed token ids, never let vLLM
detokenize, and parse Harmony ourselves, so this tokenizer is read for nothing but the grammar.
xgrammar matches a token by its text, and the text of `<|end|>` or `<|reserved_200020|>` is a
valid JSON string: a grammar would let the model write a control token inside a string, and our
parser (rightly) ends the message there. The engine's copy therefore spells every special token as
the byte 0xFF + its text. 0xFF begins no UTF-8 sequence, and xgrammar's JSON, regex, EBNF and free
text all match characters, never raw bytes: not even `.*` or `[\x00-\xff]*` reaches such a token,
so the grammar can reach a special token only as a `{"type": "token"}` element, by id; ids are
unchanged. (An earlier NUL mark left regex and grammar formats open: `.` admits a NUL. Excluding
`<|` in the grammar instead makes xgrammar drop minLength/maxLength.)

Sources: the `tokenizer` setting; else the model's own (a directory with one, or a hub id); else,
for dummy-weight config directories, the offline o200k_harmony files (no download). The copy is
written once per source into a cache directory, atomically, so parallel starts agree.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from service.config import Settings

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
# The byte-level (GPT-2) spelling of byte 0xFF: xgrammar decodes it to that byte, invalid UTF-8.
CONTROL_MARK = "\u00ff"
# Bump when the derivation changes: cached copies of an older recipe are then not reused.
RECIPE = "ff-marked-specials-2"


def tokenizer_dir(settings: Settings) -> str:
    """The directory the engine loads: the grammar copy of the source tokenizer."""
    source = source_tokenizer(settings)
    model_config = Path(settings.model).expanduser() / "config.json"
    config = model_config if model_config.exists() else source / "config.json"
    return str(grammar_tokenizer(source, settings.tokenizer_cache_dir, config))


def source_tokenizer(settings: Settings) -> Path:
    """Where the real tokenizer files are (downloading a hub model's two small files if needed)."""
    name = settings.tokenizer or settings.model
    path = Path(name).expanduser()
    if path.is_dir():
        if (path / "tokenizer.json").exists():
            return path
        if not settings.tokenizer:  # a dummy-weight config directory
            return offline_tokenizer(settings.tokenizer_cache_dir)
        raise ValueError(f"tokenizer directory {name} has no tokenizer.json")
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(name, allow_patterns=[*TOKENIZER_FILES, "config.json"]))


def offline_tokenizer(cache_dir: str) -> Path:
    """o200k_harmony, generated from openai_harmony's vocabulary (a few seconds, once per cache)."""
    from service.harmony.tokenizer_files import build_tokenizer

    return _cached(Path(cache_dir).expanduser() / "o200k_harmony", build_tokenizer)


def grammar_tokenizer(source: Path, cache_dir: str, config: Path | None = None) -> Path:
    """The 0xFF-marked copy of `source`, keyed by its files' contents. `config`, the model's
    config.json, goes beside it: vLLM reads a config from the tokenizer directory and, without
    one, retries with sleeps on every start."""
    digest = hashlib.sha256(RECIPE.encode())
    for path in [source / name for name in TOKENIZER_FILES] + ([config] if config else []):
        if path.exists():
            digest.update(path.name.encode() + path.read_bytes())
    target = Path(cache_dir).expanduser() / f"grammar-{digest.hexdigest()[:16]}"
    return _cached(target, lambda out: write_grammar_copy(source, out, config))


def write_grammar_copy(source: Path, out: Path, config: Path | None = None) -> None:
    if config is not None and config.exists():
        shutil.copyfile(config, out / "config.json")
    tokenizer = json.loads((source / "tokenizer.json").read_text())
    specials = {t["content"] for t in tokenizer["added_tokens"] if t.get("special")}
    tokenizer["added_tokens"] = _mark_strings(tokenizer["added_tokens"], specials)
    (out / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False))
    for name in TOKENIZER_FILES[1:]:
        if (source / name).exists():
            settings = _mark_strings(json.loads((source / name).read_text()), specials)
            (out / name).write_text(json.dumps(settings, ensure_ascii=False, indent=1))


def _mark_strings(value: Any, specials: set[str]) -> Any:
    """Every special token's text inside a tokenizer config (eos_token, added_tokens_decoder, ...)."""
    if isinstance(value, str):
        return CONTROL_MARK + value if value in specials else value
    if isinstance(value, list):
        return [_mark_strings(item, specials) for item in value]
    if isinstance(value, dict):
        return {key: _mark_strings(item, specials) for key, item in value.items()}
    return value


def _cached(target: Path, write: Callable[[Path], None]) -> Path:
    if (target / "tokenizer.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    write(staging)
    try:
        staging.rename(target)
    except OSError:  # another process won the race: its files are the same
        shutil.rmtree(staging, ignore_errors=True)
    return target
