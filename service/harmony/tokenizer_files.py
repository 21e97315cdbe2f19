"""The offline gpt-oss (o200k_harmony) Hugging Face tokenizer files, written beside a model config.

`vllm serve` and xgrammar need a tokenizer; our service renders and parses Harmony itself. The
ranks come from `openai_harmony`'s embedded vocabulary (the rebuilt o200k_base is checked against
OpenAI's published sha256), so nothing is downloaded. Used by bench/tokenizer.py (anchor models)
and models/harmony-tiny/build.py (the trained tiny model). Needs `transformers` and `tokenizers`
(vLLM dependencies), imported only when called.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

O200K_BASE_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
BASE_RANKS = 199998
_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def write_o200k_base(path: Path) -> None:
    """o200k_base.tiktoken (base64 token, rank) from openai_harmony's embedded vocabulary."""
    from openai_harmony import HarmonyEncodingName, load_harmony_encoding

    encoding = load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)
    lines = []
    for rank in range(BASE_RANKS):
        raw = encoding.decode([rank], errors="surrogateescape").encode("utf-8", "surrogateescape")
        lines.append(base64.b64encode(raw) + b" " + str(rank).encode())
    data = b"\n".join(lines) + b"\n"
    if hashlib.sha256(data).hexdigest() != O200K_BASE_SHA256:
        raise RuntimeError("rebuilt o200k_base ranks do not match OpenAI's published file")
    path.write_bytes(data)


def build_tokenizer(out_dir: Path) -> None:
    """tokenizer.json + tokenizer_config.json for o200k_harmony, checked against openai_harmony."""
    from openai_harmony import HarmonyEncodingName, load_harmony_encoding
    from tokenizers import AddedToken
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    vocab = out_dir / "o200k_base.tiktoken"
    write_o200k_base(vocab)
    encoding = load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)
    specials = [encoding.decode([i]) for i in range(BASE_RANKS, 201088)]
    tok = TikTokenConverter(vocab_file=str(vocab), pattern=_PATTERN).converted()  # type: ignore[no-untyped-call]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    if tok.token_to_id("<|start|>") != 200006 or tok.token_to_id("<|reserved_201087|>") != 201087:
        raise RuntimeError("special token ids are off")
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok, bos_token="<|startoftext|>", eos_token="<|return|>", pad_token="<|endoftext|>"
    )
    fast.model_max_length = 131072
    fast.save_pretrained(str(out_dir))
    vocab.unlink()
    for text in [
        "Hello world! 1234 ümlaut 你好",
        "<|start|>user<|message|>What is 2+2?<|end|><|start|>assistant",
    ]:
        if encoding.encode(text, allowed_special="all") != fast.encode(text, add_special_tokens=False):
            raise RuntimeError(f"tokenizer disagrees with openai_harmony on {text!r}")
