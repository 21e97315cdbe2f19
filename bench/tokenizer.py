"""A gpt-oss (o200k_harmony) Hugging Face tokenizer, built offline, beside a copy of the model config.

`vllm serve` needs one to render and parse Harmony for chat. The ranks come from `openai_harmony`
itself (it embeds o200k_base; the rebuilt file is checked against OpenAI's published sha256), so
nothing is downloaded. Same construction as ../shared/tokenizer/make_gpt_oss_tokenizer.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from service.harmony.tokenizer_files import TOKENIZER_FILES, build_tokenizer


def model_dir_with_tokenizer(model: str, cache: Path) -> str:
    """A local model dir (config.json) with a tokenizer beside it, made once under `cache`.

    A model id or a dir that already has a tokenizer is returned as is. Every frontend is then
    pointed at the returned dir, so all engines load the same path with the same arguments.
    """
    source = Path(model)
    if not (source / "config.json").is_file() or (source / "tokenizer.json").is_file():
        return model
    target = cache / source.resolve().name
    if all((target / name).is_file() for name in TOKENIZER_FILES) and (target / "config.json").is_file():
        return str(target.resolve())
    target.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.is_file() and item.suffix == ".json":
            shutil.copyfile(item, target / item.name)
    build_tokenizer(target)
    return str(target.resolve())
