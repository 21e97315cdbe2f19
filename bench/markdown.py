"""Markdown cells for the report: numbers, ratios, verdicts, table rows."""

from __future__ import annotations

from collections.abc import Sequence


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt(value: float | None, digits: int = 0, suffix: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}{suffix}"


def x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def md_head(head: Sequence[str]) -> list[str]:
    """A markdown table's header row and its separator, every column right-aligned."""
    return [md_row(head), "|" + "---:|" * len(head)]
