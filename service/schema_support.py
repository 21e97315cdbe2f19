"""What xgrammar does with a JSON schema: keywords it compiles but does not enforce are refused,
never ignored; bounded strings are rewritten so their grammar is valid JSON.

Measured on xgrammar 0.2.8 (docs/structured-output.md): a grammar built from a schema with the
refused keywords accepts output that violates them, so a strict schema with them would promise
what decoding does not keep. A string with minLength/maxLength compiles to `[^"\\\r\n]{m,n}`,
which admits raw control characters (invalid JSON) and Harmony's special tokens; as a `pattern` of
the same bounds over non-control characters it does not. The walks follow subschemas only
(property names are not keywords).
"""

from __future__ import annotations

from typing import Any

_UNENFORCED = ("not", "if", "then", "else", "dependentRequired", "dependentSchemas", "uniqueItems")
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMAS = ("items", "additionalProperties", "contains", "propertyNames")


def _children(node: dict[str, Any], path: str) -> list[tuple[Any, str]]:
    found: list[tuple[Any, str]] = []
    for key in _SUBSCHEMA_MAPS:
        if isinstance(node.get(key), dict):
            found.extend((child, f"{path}/{key}/{name}") for name, child in node[key].items())
    for key in _SUBSCHEMA_LISTS:
        if isinstance(node.get(key), list):
            found.extend((child, f"{path}/{key}/{i}") for i, child in enumerate(node[key]))
    for key in _SUBSCHEMAS:
        child = node.get(key)
        children = child if isinstance(child, list) else [child]
        found.extend((item, f"{path}/{key}") for item in children)
    return found


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
        bounded = "minLength" in node or "maxLength" in node
        if bounded and ("pattern" in node or "format" in node):
            other = "pattern" if "pattern" in node else "format"
            return f"{path or '/'}: {other} together with minLength/maxLength"
        if isinstance(node.get("allOf"), list) and len(node["allOf"]) > 1:
            return f"{path or '/'}: allOf with more than one schema"
        ref = node.get("$ref")
        if isinstance(ref, str) and not (ref == "#" or ref.startswith("#/")):
            return f"{path or '/'}: $ref to another document ({ref[:100]})"
        stack.extend(_children(node, path))
    return None


def xgrammar_schema(schema: Any) -> Any:
    """A copy of `schema` whose bounded strings are patterns (see the module docstring)."""
    if isinstance(schema, list):
        return [xgrammar_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    node = {key: _rewritten(key, value) for key, value in schema.items()}
    if ("minLength" in node or "maxLength" in node) and "pattern" not in node and "format" not in node:
        # protobuf Struct numbers are doubles (16.0); the meta-schema check admits integral ones.
        low, high = int(node.pop("minLength", 0)), node.pop("maxLength", None)
        node["pattern"] = f"^[^\\x00-\\x1f]{{{low},{'' if high is None else int(high)}}}$"
    return node


def _rewritten(key: str, value: Any) -> Any:
    if key in _SUBSCHEMA_MAPS and isinstance(value, dict):
        return {name: xgrammar_schema(child) for name, child in value.items()}
    if key in _SUBSCHEMA_LISTS or key in _SUBSCHEMAS:
        return xgrammar_schema(value)
    return value
