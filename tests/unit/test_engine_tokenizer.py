"""The engine's tokenizer is a grammar table: same ids, every special token's text 0xFF-marked."""

from __future__ import annotations

import json
from pathlib import Path

from service.config import HARMONY_TINY_DIR
from service.engine_tokenizer import CONTROL_MARK, grammar_tokenizer
from service.harmony import tokens as tk


def test_the_copy_keeps_ids_and_marks_every_special_token(tmp_path: Path) -> None:
    from vllm.tokenizers import get_tokenizer

    copy = grammar_tokenizer(HARMONY_TINY_DIR, str(tmp_path))
    assert grammar_tokenizer(HARMONY_TINY_DIR, str(tmp_path)) == copy  # cached by content
    tokenizer = get_tokenizer(str(copy))
    vocab = tokenizer.get_vocab()
    assert tokenizer.eos_token_id == tk.RETURN  # vLLM's stop token is unchanged
    assert vocab[CONTROL_MARK + "<|end|>"] == tk.END and "<|end|>" not in vocab
    assert tokenizer.max_token_id == 201087
    original = json.loads((HARMONY_TINY_DIR / "tokenizer.json").read_text())
    specials = [t for t in original["added_tokens"] if t["special"]]
    assert len(specials) == 1090
    assert all(vocab[CONTROL_MARK + t["content"]] == t["id"] for t in specials)
    # Ordinary text tokenizes as before (the engine never needs it, but nothing else changed).
    assert tokenizer.encode("hello world", add_special_tokens=False) == tk.encoding().encode("hello world")


def test_xgrammar_reads_special_tokens_as_invalid_utf8(tmp_path: Path) -> None:
    import xgrammar

    tokenizer_file = grammar_tokenizer(HARMONY_TINY_DIR, str(tmp_path))
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(tokenizer_file))
    info = xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=201088)
    assert info.decoded_vocab[tk.END] == b"\xff<|end|>"
    assert info.stop_token_ids == [tk.RETURN]
