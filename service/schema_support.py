"""JSON-schema keywords that xgrammar compiles but does not enforce: refused, never ignored.

Measured on xgrammar 0.2.8 (docs/structured-output.md): a grammar built from a schema with these
keywords accepts output that violates them, so a strict schema with them would promise what
decoding does not keep. The walk follows subschemas only (property names are not keywords).
"""

from __future__ import annotations

from typing import Any

_UNENFORCED = ("not", "if", "then", "else", "dependentRequired", "dependentSchemas", "uniqueItems")
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMAS = ("items", "additionalProperties", "contains", "propertyNames")


def unenforced_keyword(schema: Any) -> str | None:
    """The first keyword (as `path: keyword`) decoding would not enforce, or None."""
    stack: list[tuple[Any, str]] = [(schema, "")]
    while stack:
        node, path = stack.pop()
        if not isinstance(node, dict):
            continue
        for keyword in _UNENFORCED:
            if keyword in node and not (keyword == "uniqueItems" and node[keyword] is False):
                return f"{path or '/'}: {keyword}"
        if isinstance(node.get("allOf"), list) and len(node["allOf"]) > 1:
            return f"{path or '/'}: allOf with more than one schema"
        ref = node.get("$ref")
        if isinstance(ref, str) and not (ref == "#" or ref.startswith("#/")):
            return f"{path or '/'}: $ref to another document ({ref[:100]})"
        for key in _SUBSCHEMA_MAPS:
            if isinstance(node.get(key), dict):
                stack.extend((child, f"{path}/{key}/{name}") for name, child in node[key].items())
        for key in _SUBSCHEMA_LISTS:
            if isinstance(node.get(key), list):
                stack.extend((child, f"{path}/{key}/{i}") for i, child in enumerate(node[key]))
        for key in _SUBSCHEMAS:
            child = node.get(key)
            children = child if isinstance(child, list) else [child]
            stack.extend((item, f"{path}/{key}") for item in children)
    return None
