"""Structured output: a request's response format and tool choice → one xgrammar structural tag.

vLLM enforces the tag while decoding (token ids in, our Harmony parser out). Every `begin` string
is what `service.harmony.render` (openai_harmony) renders for that message, byte for byte
(tests/unit/test_structured_output.py renders and compares): a begin string the model was not
trained on would force it off its distribution (vLLM PR #51020 fixed exactly that bug).
The analysis branch stays free text, capped by the reasoning budget inside the grammar itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from service.harmony.render import FUNCTIONS_PREFIX, FunctionTool, ToolChoiceMode
from service.harmony.tokens import encoding
from service.schema_support import xgrammar_schema

FormatKind = Literal["json_schema", "json_object", "regex", "grammar"]

ANALYSIS_BEGIN = "<|channel|>analysis<|message|>"
# The analysis message ends and the next assistant message starts: the prompt ends in
# `<|start|>assistant`, so every message the model writes starts at `<|channel|>`.
NEXT_MESSAGE = "<|end|><|start|>assistant"
FINAL_JSON_BEGIN = "<|channel|>final <|constrain|>json<|message|>"
FINAL_TEXT_BEGIN = "<|channel|>final<|message|>"
RETURN = "<|return|>"
CALL = "<|call|>"
# At most one whitespace character in a row inside JSON: random weights would otherwise emit
# whitespace runs until max_tokens; real models write compact or singly-spaced JSON anyway.
MAX_JSON_WHITESPACE = 1
# Harmony's special tokens are never text. In the engine's tokenizer their text starts with the
# byte 0xFF (service/engine_tokenizer.py), which no grammar admits; free text excludes this prefix too,
# so every special token the grammar allows is a `{"type": "token"}` element.
SPECIAL_PREFIX = "<|"


@dataclass(frozen=True)
class ResponseFormatSpec:
    """A checked response format; `enforced` False: shown to the model, not constrained."""

    kind: FormatKind
    name: str = ""
    description: str = ""
    schema: dict[str, Any] | None = None
    pattern: str = ""
    enforced: bool = True

    @property
    def prompt_section(self) -> str:
        """Harmony's "# Response Formats" section of the developer message (JSON formats only)."""
        if self.kind != "json_schema" or self.schema is None:
            return ""
        description = f"// {self.description}\n" if self.description else ""
        compact = json.dumps(self.schema, separators=(",", ":"))
        return f"# Response Formats\n\n## {self.name}\n\n{description}{compact}"


def tool_call_begin(name: str) -> str:
    """The header of a function call as our renderer writes it (after `<|start|>assistant`)."""
    return f"<|channel|>commentary to={FUNCTIONS_PREFIX}{name} <|constrain|>json<|message|>"


def json_content(schema: dict[str, Any] | None) -> dict[str, Any]:
    """A JSON content format; None: any JSON object."""
    return {
        "type": "json_schema",
        "json_schema": xgrammar_schema(schema) if schema is not None else {"type": "object"},
        "max_whitespace_cnt": MAX_JSON_WHITESPACE,
    }


def format_content(spec: ResponseFormatSpec) -> dict[str, Any]:
    if spec.kind == "regex":
        return {"type": "regex", "pattern": spec.pattern}
    if spec.kind == "grammar":
        return {"type": "grammar", "grammar": spec.pattern}
    return json_content(spec.schema if spec.kind == "json_schema" else None)


_SPECIAL = re.compile(r"(<\|[a-z_]+\|>)")


def _spelled(text: str) -> list[dict[str, Any]]:
    """Header text as elements: each Harmony special token BY ID, the text between as constants.

    A tag whose begin is the string `<|channel|>` lets xgrammar spell it with ordinary tokens
    (`<`, `|`, `channel`, ...; sampled from random weights), which no Harmony parser reads as a
    header and which no stop token ends: every special token must be the token itself.
    """
    elements: list[dict[str, Any]] = []
    for piece in _SPECIAL.split(text):
        if not piece:
            continue
        if _SPECIAL.fullmatch(piece):
            elements.append({"type": "token", "token": encoding().encode(piece, allowed_special="all")[0]})
        else:
            elements.append({"type": "const_string", "value": piece})
    return elements


def _message(begin: str, content: dict[str, Any]) -> dict[str, Any]:
    """One Harmony message of the answer; the engine's stop token (<|return|>, <|call|>) ends it:
    xgrammar allows the request's stop tokens only once the grammar is complete."""
    return {"type": "sequence", "elements": [*_spelled(begin), content]}


def _analysis(content: dict[str, Any]) -> dict[str, Any]:
    """The analysis message, then the next assistant header (`<|end|><|start|>assistant`)."""
    first, *rest = _spelled(ANALYSIS_BEGIN)
    end, *after = _spelled(NEXT_MESSAGE)
    message = {
        "type": "tag",
        "begin": first,
        "content": {"type": "sequence", "elements": [*rest, content]},
        "end": end,
    }
    return {"type": "sequence", "elements": [message, *after]}


def _final_tag(spec: ResponseFormatSpec) -> dict[str, Any]:
    begin = FINAL_JSON_BEGIN if spec.kind in ("json_schema", "json_object") else FINAL_TEXT_BEGIN
    return _message(begin, format_content(spec))


def _free_final() -> dict[str, Any]:
    return _message(FINAL_TEXT_BEGIN, {"type": "any_text", "excludes": [SPECIAL_PREFIX]})


def _call_tag(tool: FunctionTool) -> dict[str, Any]:
    return _message(tool_call_begin(tool.name), json_content(tool.parameters or {"type": "object"}))


def _strict_call_tag(tool: FunctionTool, strict: bool) -> dict[str, Any]:
    """Auto mode: strict tools' arguments meet their schema; the others any JSON object."""
    return _message(
        tool_call_begin(tool.name), json_content(tool.parameters if strict and tool.parameters else None)
    )


@dataclass(frozen=True)
class Constraint:
    """What the grammar forces; `answer` is the part after the (optional) analysis."""

    answer: dict[str, Any] | None

    def structural_tag(self, analysis: bool, max_analysis_tokens: int | None = None) -> str:
        """The tag as JSON; `analysis` False: the answer must come first (budget spent or 0)."""
        assert self.answer is not None
        elements: list[dict[str, Any]] = []
        if analysis:
            free: dict[str, Any] = {"type": "any_text", "excludes": [SPECIAL_PREFIX]}
            if max_analysis_tokens is not None:
                # The budget lives in the grammar: at the cap only `<|end|>` may follow, then the
                # answer. usage.reasoning_tokens counts that `<|end|>` too, so the text gets one less.
                free["max_tokens"] = max(0, max_analysis_tokens - 1)
            elements.append({"type": "optional", "content": _analysis(free)})
        elements.append(self.answer)
        return _wrap({"type": "sequence", "elements": elements})


def _wrap(fmt: dict[str, Any]) -> str:
    return json.dumps({"type": "structural_tag", "format": fmt}, separators=(",", ":"))


def constraint_for(
    spec: ResponseFormatSpec | None,
    tools: Sequence[FunctionTool],
    mode: ToolChoiceMode,
    strict: Sequence[bool],
) -> Constraint | None:
    """The constraint of a request, or None when nothing is enforced.

    A required / named tool choice wins over a response format (the turn ends in the call; the
    format applies to the answer after the tool result, a later request). `tools` are those
    offered to the model (only the named one for a named choice); `strict` is per tool.
    """
    if mode in ("required", "function") and tools:
        calls = [_call_tag(tool) for tool in tools]
        answer = calls[0] if len(calls) == 1 else {"type": "or", "elements": calls}
        return Constraint(answer)
    if spec is not None and spec.enforced:
        return Constraint(_final_tag(spec))
    strict_tools = [tool for tool, is_strict in zip(tools, strict, strict=True) if is_strict]
    if mode == "auto" and strict_tools:
        # One message after the analysis: a free final answer, or a call (strict ones checked).
        calls = [_strict_call_tag(tool, is_strict) for tool, is_strict in zip(tools, strict, strict=True)]
        return Constraint({"type": "or", "elements": [_free_final(), *calls]})
    return None
