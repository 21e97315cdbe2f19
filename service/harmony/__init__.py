"""Harmony codec: `render` (request → prompt token ids) and `parse` (token ids → events)."""

from service.harmony.parse import (
    ContentText,
    Event,
    HarmonyStreamParser,
    ReasoningText,
    ToolCallArguments,
    ToolCallEnd,
    ToolCallStart,
)
from service.harmony.render import (
    ChatMessage,
    ChatRequest,
    FunctionTool,
    RenderError,
    ToolCallRecord,
    render_prompt,
)
from service.harmony.tokens import ASSISTANT_STOP_TOKENS

__all__ = [
    "ASSISTANT_STOP_TOKENS",
    "ChatMessage",
    "ChatRequest",
    "ContentText",
    "Event",
    "FunctionTool",
    "HarmonyStreamParser",
    "ReasoningText",
    "RenderError",
    "ToolCallArguments",
    "ToolCallEnd",
    "ToolCallRecord",
    "ToolCallStart",
    "render_prompt",
]
