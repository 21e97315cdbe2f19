"""The structural tag: begin strings equal what our renderer writes, and xgrammar accepts exactly
the rendered messages (a tokenizer-free matcher over the tag's grammar)."""

from __future__ import annotations

import functools
import tempfile

import pytest
import xgrammar
from openai_harmony import Message, Role

from service.config import HARMONY_TINY_DIR
from service.engine_tokenizer import grammar_tokenizer
from service.errors import ServiceError
from service.harmony.render import ChatMessage, ChatRequest, FunctionTool, ToolCallRecord, history_messages
from service.harmony.tokens import encoding
from service.structured_checks import check_compiles, compile_cache_info
from service.structured_output import (
    ANALYSIS_BEGIN,
    FINAL_JSON_BEGIN,
    FINAL_TEXT_BEGIN,
    NEXT_MESSAGE,
    FormatKind,
    ResponseFormatSpec,
    constraint_for,
    tool_call_begin,
)

HEADER = "<|start|>assistant"


def _rendered(message: Message) -> str:
    text: str = encoding().decode(encoding().render(message))
    assert text.startswith(HEADER)
    return text[len(HEADER) :]


def _assistant(**fields: object) -> list[str]:
    chat = ChatRequest(messages=[ChatMessage("user", "hi"), ChatMessage("assistant", **fields)])  # type: ignore[arg-type]
    return [_rendered(m) for m in history_messages(chat)[1:]]


def test_begin_strings_match_the_renderer() -> None:
    analysis, final = _assistant(reasoning="think", content='{"a":1}')
    assert analysis == ANALYSIS_BEGIN + "think<|end|>"
    assert final == FINAL_TEXT_BEGIN + '{"a":1}<|end|>'
    (call,) = _assistant(tool_calls=(ToolCallRecord("c1", "get_weather", '{"city":"x"}'),))
    assert call.startswith(tool_call_begin("get_weather") + '{"city":"x"}')
    json_final = Message.from_role_and_content(Role.ASSISTANT, "{}").with_channel("final")
    assert _rendered(json_final.with_content_type("<|constrain|>json")) == FINAL_JSON_BEGIN + "{}<|end|>"
    assert NEXT_MESSAGE == "<|end|>" + HEADER


@functools.cache
def _compiler() -> xgrammar.GrammarCompiler:
    from transformers import PreTrainedTokenizerFast

    grammar_copy = grammar_tokenizer(HARMONY_TINY_DIR, tempfile.mkdtemp(prefix="grammar-tokenizer."))
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(grammar_copy))
    return xgrammar.GrammarCompiler(xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=201088))


def _matches(tag: str, text: str) -> bool:
    """Token by token, as the engine samples: the text is encoded like openai_harmony renders it."""
    compiled = _compiler().compile_structural_tag(tag)
    matcher = xgrammar.GrammarMatcher(compiled, terminate_without_stop_token=True)
    # The turn's stop token (<|return|>, <|call|>) is the engine's, after the grammar completes.
    for stop in ("<|return|>", "<|call|>"):
        text = text.removesuffix(stop)
    tokens = encoding().encode(text, allowed_special="all")
    return all(matcher.accept_token(t) for t in tokens) and matcher.is_terminated()


def _accepts_tokens(tag: str, tokens: list[int]) -> bool:
    matcher = xgrammar.GrammarMatcher(
        _compiler().compile_structural_tag(tag), terminate_without_stop_token=True
    )
    return all(matcher.accept_token(t) for t in tokens)


def test_headers_must_be_the_special_tokens_not_their_spelling() -> None:
    """xgrammar would otherwise spell `<|message|>` as `<`, `|`, `message`, ... (random weights did),
    which our parser reads as text: every header token is the special token itself."""
    spec = ResponseFormatSpec("json_schema", name="x", schema=SCHEMA)
    found = constraint_for(spec, (), "auto", ())
    assert found is not None
    tag = found.structural_tag(analysis=False)
    real = encoding().encode(FINAL_JSON_BEGIN, allowed_special="all")
    spelled = encoding().encode(FINAL_JSON_BEGIN, disallowed_special=())  # the same text, ordinary tokens
    assert real != spelled
    assert _accepts_tokens(tag, real)
    assert not _accepts_tokens(tag, spelled)


SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def test_the_tag_accepts_the_rendered_json_answer_with_and_without_analysis() -> None:
    spec = ResponseFormatSpec("json_schema", name="x", schema=SCHEMA)
    found = constraint_for(spec, (), "auto", ())
    assert found is not None
    answer = FINAL_JSON_BEGIN + '{"n":3}<|return|>'
    with_analysis = found.structural_tag(analysis=True)
    assert _matches(with_analysis, answer)
    assert _matches(with_analysis, ANALYSIS_BEGIN + "hmm" + NEXT_MESSAGE + answer)
    assert not _matches(with_analysis, FINAL_JSON_BEGIN + '{"m":3}<|return|>')
    # Special tokens are never content: not in the analysis, not in JSON strings.
    assert not _matches(with_analysis, ANALYSIS_BEGIN + "a<|message|>b" + NEXT_MESSAGE + answer)
    assert not _matches(with_analysis, ANALYSIS_BEGIN + "a<|start|>" + NEXT_MESSAGE + answer)
    strings = ResponseFormatSpec(
        "json_schema", name="x", schema={"type": "object", "properties": {"s": {"type": "string"}}}
    )
    tag = constraint_for(strings, (), "auto", ())
    assert tag is not None
    assert _matches(tag.structural_tag(analysis=False), FINAL_JSON_BEGIN + '{"s":"ok"}<|return|>')
    assert not _matches(tag.structural_tag(analysis=False), FINAL_JSON_BEGIN + '{"s":"a<|end|>"}<|return|>')
    assert not _matches(found.structural_tag(analysis=False), ANALYSIS_BEGIN + "hmm" + NEXT_MESSAGE + answer)


def test_required_tool_choice_accepts_only_calls() -> None:
    tools = [FunctionTool("a", parameters=SCHEMA), FunctionTool("b")]
    found = constraint_for(None, tools, "required", (False, False))
    assert found is not None
    tag = found.structural_tag(analysis=True)
    assert _matches(tag, tool_call_begin("a") + '{"n":1}<|call|>')
    assert _matches(tag, tool_call_begin("b") + "{}<|call|>")
    assert not _matches(tag, FINAL_TEXT_BEGIN + "hello<|return|>")


def test_strict_tools_in_auto_mode_constrain_calls_but_leave_the_answer_free() -> None:
    tools = [FunctionTool("a", parameters=SCHEMA), FunctionTool("b")]
    found = constraint_for(None, tools, "auto", (True, False))
    assert found is not None
    tag = found.structural_tag(analysis=True)
    assert _matches(tag, FINAL_TEXT_BEGIN + "hello there<|return|>")
    assert _matches(tag, tool_call_begin("a") + '{"n": 2}<|call|>')
    assert not _matches(tag, tool_call_begin("a") + '{"m": 2}<|call|>')
    assert _matches(tag, tool_call_begin("b") + '{"anything": true}<|call|>')
    assert constraint_for(None, tools, "auto", (False, False)) is None


def test_regex_answers_have_no_constrain_header() -> None:
    found = constraint_for(ResponseFormatSpec("regex", pattern="[0-9]+"), (), "auto", ())
    assert found is not None
    assert _matches(found.structural_tag(analysis=False), FINAL_TEXT_BEGIN + "42<|return|>")


@pytest.mark.parametrize(
    ("kind", "pattern"),
    [
        ("regex", ".*"),
        ("regex", r"[\s\S]*"),
        ("regex", r"[\x00-\xff]*"),
        ("grammar", "root ::= [^a]*"),
        ("grammar", r"root ::= [\x00-\xff]*"),
    ],
)
def test_any_character_patterns_never_spell_a_special_token(kind: FormatKind, pattern: str) -> None:
    """With NUL-marked special tokens, `.` admitted all 1,090 of them as text, and our parser ended
    the answer at the first: only the token's mark decides, since every pattern here admits a NUL."""
    found = constraint_for(ResponseFormatSpec(kind, pattern=pattern), (), "auto", ())
    assert found is not None
    tag = found.structural_tag(analysis=False)
    assert _matches(tag, FINAL_TEXT_BEGIN + "mixed text, <| or \x00 <return><|return|>")
    for special in ("<|end|>", "<|message|>", "<|call|>", "<|reserved_200020|>"):
        assert not _matches(tag, FINAL_TEXT_BEGIN + "x" + special + "y<|return|>"), special


def test_compile_check_is_cached_and_names_the_param() -> None:
    content = {"type": "regex", "pattern": "(unclosed"}
    with pytest.raises(ServiceError) as caught:
        check_compiles(content, "response_format.regex")
    assert caught.value.param == "response_format.regex"
    hits = compile_cache_info().hits
    with pytest.raises(ServiceError):
        check_compiles(content, "response_format.regex")
    assert compile_cache_info().hits == hits + 1


def test_bounded_strings_keep_their_bounds_and_never_hold_a_special_token() -> None:
    """Excluding `<|` inside the grammar made xgrammar drop minLength/maxLength; the 0xFF-marked
    tokenizer keeps control tokens out of strings with the bounds intact."""
    schema = {"type": "object", "properties": {"s": {"type": "string", "minLength": 2, "maxLength": 12}}}
    found = constraint_for(ResponseFormatSpec("json_schema", name="x", schema=schema), (), "auto", ())
    assert found is not None
    tag = found.structural_tag(analysis=False)
    assert _matches(tag, FINAL_JSON_BEGIN + '{"s":"abc"}<|return|>')
    assert not _matches(tag, FINAL_JSON_BEGIN + '{"s":"a"}<|return|>')
    assert not _matches(tag, FINAL_JSON_BEGIN + '{"s":"abcdefghijklm"}<|return|>')
    for special in ("<|end|>", "<|call|>", "<|message|>"):  # each fits the bound as text
        assert not _matches(tag, FINAL_JSON_BEGIN + '{"s":"a' + special + '"}<|return|>'), special
    # xgrammar's own bounded string admits raw control characters: invalid JSON.
    assert not _matches(tag, FINAL_JSON_BEGIN + '{"s":"a\tb"}<|return|>')
    assert _matches(tag, FINAL_JSON_BEGIN + '{"s":"é漢字"}<|return|>')  # bounds count characters
