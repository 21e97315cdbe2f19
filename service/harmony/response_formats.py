"""Harmony's "# Response Formats" section, spliced into the rendered developer message.

gpt-oss was trained with response formats in the developer message, after `# Tools`;
openai_harmony has no API for the section, so it goes in before the developer message's `<|end|>`
(or a developer message holding only it is added after the system message). A module apart from
render.py on purpose: the trained tiny model's recipe hashes render.py, and this adds nothing to it.
"""

from __future__ import annotations

from service.harmony.render import ChatRequest, render_prompt
from service.harmony.tokens import END, MESSAGE, START, encoding


def render_with_formats(chat: ChatRequest, section: str = "") -> list[int]:
    """`render_prompt`, with `section` ("" = none) at the end of the developer message."""
    tokens = render_prompt(chat)
    if not section:
        return tokens
    system_end = tokens.index(END)
    developer = _role_tokens("developer")
    header = [START, *developer]
    after_system = system_end + 1
    if tokens[after_system : after_system + len(header)] == header:
        developer_end = tokens.index(END, after_system)
        separator = "" if tokens[developer_end - 1] == MESSAGE else "\n\n"
        return [*tokens[:developer_end], *_text(separator + section), *tokens[developer_end:]]
    message = [*header, MESSAGE, *_text(section), END]
    return [*tokens[:after_system], *message, *tokens[after_system:]]


def _role_tokens(role: str) -> list[int]:
    return list(encoding().encode(role, allowed_special=set()))


def _text(text: str) -> list[int]:
    return list(encoding().encode(text, allowed_special=set()))
