"""vLLM's structured output is configured for our tags, with a reasoning parser that needs no text
lookups (vLLM 0.26's gpt-oss parser looked `<|end|>` up and killed the engine on the marked
tokenizer)."""

from __future__ import annotations

import functools
import json
import os
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import xgrammar
from vllm.config import StructuredOutputsConfig
from vllm.reasoning import ReasoningParserManager
from vllm.v1.structured_output import StructuredOutputManager
from vllm.v1.structured_output.backend_xgrammar import XgrammarGrammar

from service import vllm_grammar_fill, vllm_structured
from service.config import HARMONY_TINY_DIR
from service.engine_tokenizer import grammar_tokenizer

VOCAB = 201088


def test_configure_sets_the_backend_the_reasoning_span_and_our_parser() -> None:
    config = StructuredOutputsConfig()
    vllm_structured.configure(config)
    assert config.backend == "xgrammar" and config.enable_in_reasoning
    assert config.reasoning_parser == vllm_structured.NAME
    assert Path(config.reasoning_parser_plugin).read_text() == Path(vllm_structured.__file__).read_text()


def test_the_parser_loads_by_path_and_builds_on_the_grammar_tokenizer(tmp_path: Path) -> None:
    from vllm.tokenizers import get_tokenizer

    ReasoningParserManager.import_reasoning_parser(vllm_structured.__file__)  # as the engine process does
    parser_cls = ReasoningParserManager.get_reasoning_parser(vllm_structured.NAME)
    tokenizer = get_tokenizer(
        str(grammar_tokenizer(HARMONY_TINY_DIR, str(tmp_path), HARMONY_TINY_DIR / "config.json"))
    )
    parser = parser_cls(tokenizer)
    assert parser.is_reasoning_end([]) and parser.is_reasoning_end_streaming([], [])


@functools.cache
def _compiler() -> xgrammar.GrammarCompiler:
    from transformers import PreTrainedTokenizerFast

    grammar_copy = grammar_tokenizer(HARMONY_TINY_DIR, tempfile.mkdtemp(prefix="grammar-tokenizer."))
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(grammar_copy))
    return xgrammar.GrammarCompiler(xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=VOCAB))


SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}, "n": {"type": "integer"}}}
# Fresh, inside a string (the costly state), after a number, and finished (terminated).
PREFIXES = ["", '{"text": "a printer ', '{"n": 12', '{"text": "x"}']


def _requests(count: int) -> dict[str, SimpleNamespace]:
    """`count` requests with real xgrammar grammars (vLLM's own class) in the states above."""
    compiled = _compiler().compile_json_schema(json.dumps(SCHEMA))
    requests = {}
    for i in range(count):
        matcher = xgrammar.GrammarMatcher(compiled, terminate_without_stop_token=True)
        assert matcher.accept_string(PREFIXES[i % len(PREFIXES)])
        grammar = XgrammarGrammar(vocab_size=VOCAB, matcher=matcher, ctx=compiled)
        grammar._is_terminated = matcher.is_terminated()
        requests[f"r{i}"] = SimpleNamespace(structured_output_request=SimpleNamespace(grammar=grammar))
    return requests


def _manager(max_num_seqs: int = 64, spec_tokens: int = 0) -> StructuredOutputManager:
    """vLLM's own manager on the config fields its __init__ and grammar_bitmask read."""
    config = SimpleNamespace(
        parallel_config=SimpleNamespace(distributed_executor_backend="mp"),
        scheduler_config=SimpleNamespace(max_num_seqs=max_num_seqs),
        model_config=SimpleNamespace(skip_tokenizer_init=True, is_diffusion=False),
        structured_outputs_config=SimpleNamespace(enable_in_reasoning=True),
        num_speculative_tokens=spec_tokens,
    )
    manager = StructuredOutputManager(config)  # type: ignore[arg-type]
    manager.backend = SimpleNamespace(  # type: ignore[assignment]
        allocate_token_bitmask=lambda n: xgrammar.allocate_token_bitmask(n, VOCAB), destroy=lambda: None
    )
    return manager


def _rows(manager: StructuredOutputManager, requests: dict[str, SimpleNamespace]) -> np.ndarray:
    rows = manager.grammar_bitmask(requests, list(requests), {})  # type: ignore[arg-type]
    assert rows is not None
    return np.array(rows, copy=True)


@pytest.fixture
def restore_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(StructuredOutputManager, "grammar_bitmask", StructuredOutputManager.grammar_bitmask)
    monkeypatch.delenv(vllm_structured.PARALLEL_FILL_ENV, raising=False)


@pytest.mark.usefixtures("restore_manager")
def test_the_batch_fill_gives_vllms_rows_and_takes_over_only_above_the_threshold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    requests = _requests(12)
    expected = _rows(_manager(), requests)  # vLLM's serial fill (12 < its 128)
    assert (expected[3] == -1).all() and not (expected[1] == -1).all()  # finished: all; in a string: not
    calls: list[int] = []
    original = xgrammar.BatchGrammarMatcher.batch_fill_next_token_bitmask
    monkeypatch.setattr(
        xgrammar.BatchGrammarMatcher,
        "batch_fill_next_token_bitmask",
        lambda self, matchers, *args: calls.append(len(matchers)) or original(self, matchers, *args),
    )
    assert vllm_grammar_fill.install(4)
    manager = _manager()
    _rows(manager, requests)  # the first step: vLLM allocates its bitmask, and fills
    assert calls == []
    bitmask = manager._grammar_bitmask
    assert bitmask is not None
    bitmask.fill_(7)  # stale rows from an earlier step must all be overwritten
    assert (_rows(manager, requests) == expected).all()
    assert calls == [9]  # one call for the 9 unfinished grammars; the 3 finished rows set in Python
    calls.clear()
    assert (_rows(manager, dict(list(requests.items())[:4])) == expected[:4]).all() and calls == []  # 4: vLLM
    pooled = _manager(max_num_seqs=256)  # vLLM makes its own fill pool
    pooled.fill_bitmask_parallel_threshold = 8  # 12 requests, above it: vLLM's pool fills them
    _rows(pooled, requests)
    assert (_rows(pooled, requests) == expected).all() and calls == []
    pooled.clear_backend()


@pytest.mark.usefixtures("restore_manager")
def test_speculative_steps_stay_with_vllm() -> None:
    assert vllm_grammar_fill.install(0)
    manager = _manager(spec_tokens=2)
    requests = _requests(4)
    manager._grammar_bitmask = xgrammar.allocate_token_bitmask(64 * 3, VOCAB)
    filled = vllm_grammar_fill.batch_fill(manager, requests, list(requests), {}, 0)
    assert filled is None
    drafted = vllm_grammar_fill.batch_fill(_manager(), requests, list(requests), {"r0": [5]}, 0)
    assert drafted is None


@pytest.mark.usefixtures("restore_manager")
def test_the_engine_process_installs_the_batch_fill_from_the_environment() -> None:
    vllm_structured.configure(StructuredOutputsConfig(), parallel_fill_above=2)
    assert os.environ[vllm_structured.PARALLEL_FILL_ENV] == "2"
    ReasoningParserManager.import_reasoning_parser(vllm_structured.__file__)  # as the engine process does
    assert getattr(StructuredOutputManager.grammar_bitmask, "_gptoss_batch_fill_above", None) == 2
    vllm_structured.configure(StructuredOutputsConfig())
    assert vllm_structured.PARALLEL_FILL_ENV not in os.environ


def test_without_xgrammars_batch_matcher_vllm_keeps_its_fill(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delattr(xgrammar, "BatchGrammarMatcher")
    manager_cls = SimpleNamespace(grammar_bitmask=lambda *args: None)
    original = manager_cls.grammar_bitmask
    assert not vllm_grammar_fill.install(4, manager_cls=manager_cls)
    assert manager_cls.grammar_bitmask is original and "BatchGrammarMatcher" in caplog.text
