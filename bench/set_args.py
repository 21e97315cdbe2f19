"""`--set KEY=VALUE` settings overrides, as every bench command reads them."""

from __future__ import annotations

import json
from typing import Any


def value(text: str) -> Any:
    """JSON when it parses (numbers, true/false, objects), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def overrides(items: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep:
            raise SystemExit(f"--set wants KEY=VALUE, got {item!r}")
        found[key.strip().replace("-", "_")] = value(text)
    return found
