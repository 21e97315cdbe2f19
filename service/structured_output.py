# NOTE FROM THE LEAD (23:15): read /work/notes/LEAD-TO-SERVICE-HELPER.md now (begin strings let
# xgrammar spell special tokens with ordinary tokens; use token elements). Delete this comment after.
"""Structured output: a request's response format and tool choice → one xgrammar structural tag.

vLLM enforces the tag while decoding (token ids in, our Harmony parser out). Every `begin` string
is what `service.harmony.render` (openai_harmony) renders for that message, byte for byte
(tests/unit/test_structured_output.py renders and compares): a begin string the model was not
trained on would force it off its distribution (vLLM PR #51020 fixed exactly that bug).
The analysis branch stays free text; the reasoning budget is enforced by the generation loop
(`service.reasoning_budget`), which then continues under the tag without the analysis branch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from service.harmony.render import FUNCTIONS_PREFIX, FunctionTool, ToolChoiceMode

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
# Every Harmony special token's text starts with this. Inside free analysis text and JSON strings
# xgrammar would otherwise accept them as plain text (`<|message|>` is a valid string), and our
# parser would then see message structure where the grammar sees content.
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
        "json_schema": schema if schema is not None else {"type": "object"},
        "max_whitespace_cnt": MAX_JSON_WHITESPACE,
        "excludes": [SPECIAL_PREFIX],
    }


def format_content(spec: ResponseFormatSpec) -> dict[str, Any]:
    if spec.kind == "regex":
        return {"type": "regex", "pattern": spec.pattern}
    if spec.kind == "grammar":
        return {"type": "grammar", "grammar": spec.pattern}
    return json_content(spec.schema if spec.kind == "json_schema" else None)


def _message(begin: str, content: dict[str, Any], end: str) -> dict[str, Any]:
    """One Harmony message of the answer. KNOWN GAP: xgrammar matches begin/end strings by text,
    which ordinary tokens can spell (`<`, `|call|>`); token elements by id fail vLLM 0.32's
    structural-tag validation (no tokenizer there), so this stays text until that is solved."""
    return {"type": "tag", "begin": begin, "content": content, "end": end}


def _final_tag(spec: ResponseFormatSpec) -> dict[str, Any]:
    begin = FINAL_JSON_BEGIN if spec.kind in ("json_schema", "json_object") else FINAL_TEXT_BEGIN
    return _message(begin, format_content(spec), RETURN)


def _call_tag(tool: FunctionTool) -> dict[str, Any]:
    return _message(tool_call_begin(tool.name), json_content(tool.parameters or {"type": "object"}), CALL)


def _triggered_call_tag(tool: FunctionTool) -> dict[str, Any]:
    """triggered_tags need string begins (matched by text): auto mode's strict calls only."""
    schema = tool.parameters or {"type": "object"}
    return {"type": "tag", "begin": tool_call_begin(tool.name), "content": json_content(schema), "end": CALL}


@dataclass(frozen=True)
class Constraint:
    """What the grammar forces; `answer` is the part after the (optional) analysis."""

    answer: dict[str, Any] | None
    # Auto mode with strict tools: free text, but their calls' arguments are constrained.
    free_with_strict_calls: bool = False

    def structural_tag(self, analysis: bool) -> str:
        """The tag as JSON; `analysis` False: the answer must come first (budget spent or 0)."""
        assert self.answer is not None
        if self.free_with_strict_calls:
            return _wrap(self.answer)
        elements: list[dict[str, Any]] = []
        if analysis:
            free = {"type": "any_text", "excludes": [SPECIAL_PREFIX]}
            elements.append({"type": "optional", "content": _message(ANALYSIS_BEGIN, free, NEXT_MESSAGE)})
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
        tags = [_triggered_call_tag(tool) for tool in strict_tools]
        triggered = {
            "type": "triggered_tags",
            "triggers": [tag["begin"] for tag in tags],
            "tags": tags,
        }
        return Constraint(triggered, free_with_strict_calls=True)
    return None
