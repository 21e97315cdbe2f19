"""The first answer `make run` shows: "Hi" through the gateway, once the stack is ready.

A new user sees at once that the stack answers (reasoning, then content) without writing a
client; a failure is one line, never fatal. Plain urllib: the supervisor imports no HTTP stack.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

PROMPT = "Hi"


def ask(gateway_url: str, prompt: str = PROMPT, timeout: float = 60.0) -> dict[str, str]:
    """One non-streamed chat completion at temperature 0: its reasoning and content."""
    with urllib.request.urlopen(f"{gateway_url}/v1/models", timeout=timeout) as response:
        model = json.load(response)["data"][0]["id"]
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_completion_tokens": 128,
        "temperature": 0,
    }
    request = urllib.request.Request(
        f"{gateway_url}/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        message: dict[str, Any] = json.load(response)["choices"][0]["message"]
    return {
        "model": model,
        "reasoning": str(message.get("reasoning_content") or ""),
        "content": str(message.get("content") or ""),
    }


def describe(gateway_url: str) -> str:
    """The line the supervisor prints: the answer, or why there is none (keys on, say)."""
    try:
        answer = ask(gateway_url)
    except (urllib.error.URLError, OSError, KeyError, IndexError, ValueError) as exc:
        return f"first answer: none ({exc}); try the README's snippets"
    return (
        f'first answer ({answer["model"]}) to "{PROMPT}": reasoning {json.dumps(answer["reasoning"])}'
        f" -> content {json.dumps(answer['content'])}"
    )
