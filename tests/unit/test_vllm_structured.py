"""vLLM's structured output is configured for our tags, with a reasoning parser that needs no text
lookups (vLLM 0.26's gpt-oss parser looked `<|end|>` up and killed the engine on the NUL-marked
tokenizer)."""

from __future__ import annotations

from pathlib import Path

from vllm.config import StructuredOutputsConfig
from vllm.reasoning import ReasoningParserManager

from service import vllm_structured
from service.config import HARMONY_TINY_DIR
from service.engine_tokenizer import grammar_tokenizer


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
