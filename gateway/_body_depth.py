"""A cap on the nesting of a JSON body, checked before any recursive parser sees it.

Python's json (and so FastAPI) fails with RecursionError from ~1000 levels, which used to become
an anonymous 400 ("error parsing the body") or, deeper in, a 500. Here a body nested deeper than
MAX_BODY_DEPTH is a 400 naming where: a tool schema 1000 levels deep names its `parameters`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine

from fastapi import Request, Response
from fastapi.routing import APIRoute

from gateway._errors import GatewayError

MAX_BODY_DEPTH = 64
# Strings (skipped whole, in C) and the structural characters between them.
_BRACKETS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_STRUCTURE = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},:]')


def _too_deep(body: bytes, limit: int) -> bool:
    if body.count(b"{") + body.count(b"[") <= limit:
        return False  # the common case: too few brackets to ever nest that deep
    depth = 0
    for match in _BRACKETS.finditer(body):
        token = match.group()
        if token in (b"{", b"["):
            depth += 1
            if depth > limit:
                return True
        elif token in (b"}", b"]"):
            depth -= 1
    return False


def _path_at_limit(body: bytes, limit: int) -> list[str | int]:
    """The keys and indexes leading to the first container past `limit` (second pass, bad bodies only)."""
    frames: list[list[str | int | None]] = []  # [key or index] per open container
    expect_key = False
    for match in _STRUCTURE.finditer(body):
        token = match.group()
        if token in (b"{", b"["):
            if len(frames) >= limit:
                break
            frames.append([None] if token == b"{" else [0])
            expect_key = token == b"{"
        elif token in (b"}", b"]"):
            frames.pop() if frames else None
            expect_key = False
        elif token == b",":
            if frames and isinstance(frames[-1][0], int):
                frames[-1][0] += 1
            else:
                expect_key = True
        elif token == b":":
            expect_key = False
        elif expect_key and frames:
            frames[-1][0] = token[1:-1].decode("utf-8", "replace")
            expect_key = False
    return [frame[0] for frame in frames if frame[0] is not None]


def _param(path: list[str | int]) -> str | None:
    """OpenAI's spelling of the param: cut at a tool's `parameters`, else after three parts."""
    if not path or isinstance(path[0], int):
        return None  # not an object body: nothing to name
    cut = path.index("parameters") + 1 if "parameters" in path else 3
    out = ""
    for part in path[:cut]:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or None


def check_body_depth(body: bytes, limit: int = MAX_BODY_DEPTH) -> None:
    if _too_deep(body, limit):
        param = _param(_path_at_limit(body, limit))
        where = f" at '{param}'" if param else ""
        raise GatewayError(
            400, f"The JSON body nests deeper than {limit} levels{where}.", param=param, code="invalid_json"
        )


class DepthCheckedRoute(APIRoute):
    """Routes whose JSON body is depth-checked before FastAPI parses it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[object, object, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            if request.method in ("POST", "PUT", "PATCH"):
                try:
                    body = await request.body()
                except Exception:  # e.g. over the size limit: FastAPI's own read of the body reports it
                    body = b""
                check_body_depth(body)
            return await handler(request)

        return checked
