"""`python -m service --help` and `--print-config`: every setting with its EFFECTIVE value.

pydantic-settings' own help shows field defaults (8192 where the profile runs 4096) and type
names; this one shows what the chosen profile, file and environment resolve to, and where each
value came from, so help and the running service never disagree. Parsing stays pydantic's.
"""

from __future__ import annotations

import json
import os
import textwrap
import types
import typing
from typing import Any, Literal

from pydantic.fields import FieldInfo

from service.config import PROFILES, Settings, _read_settings_file, detected_profile, load_settings

PRINT_CONFIG_FLAG = "--print-config"
HELP_FLAGS = ("-h", "--help")
Source = Literal["flag", "env", "file", "profile", "default"]


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def _flags_given(argv: list[str]) -> set[str]:
    """Field names named on the command line (`--x v`, `--x=v`, `--no-x`)."""
    given = set()
    for token in argv:
        if token.startswith("--"):
            name = token[2:].split("=", 1)[0].replace("-", "_")
            given.add(name)
            if name.startswith("no_"):
                given.add(name[3:])
    return given


def _env_given() -> set[str]:
    prefix = "GPTOSS_"
    return {key[len(prefix) :].lower() for key in os.environ if key.upper().startswith(prefix)}


def value_sources(settings: Settings, argv: list[str]) -> dict[str, Source]:
    """Where each field's value came from, with the precedence Settings applies."""
    flags, env = _flags_given(argv), _env_given()
    config_file = os.environ.get("GPTOSS_CONFIG_FILE")
    in_file = set(_read_settings_file(config_file)) if config_file else set()
    in_profile = set(PROFILES.get(settings.profile, {}))
    sources: dict[str, Source] = {}
    for name in Settings.model_fields:
        if name in flags:
            sources[name] = "flag"
        elif name in env:
            sources[name] = "env"
        elif name in in_file:
            sources[name] = "file"
        elif name in in_profile:
            sources[name] = "profile"
        else:
            sources[name] = "default"
    return sources


def shown_value(name: str, value: Any) -> str:
    """A value as a user would type it; API keys are counted, never shown."""
    if name == "api_keys":
        return f"{len(value)} key(s)" if value else "none"
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _metavar(field: FieldInfo) -> str:
    """A human placeholder for a flag's value: choices, N, X.Y, TEXT, JSON, A,B."""
    annotation = field.annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(arg for arg in typing.get_args(annotation) if arg is not type(None))
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "{" + ",".join(str(choice) for choice in typing.get_args(annotation)) + "}"
    if origin is dict:
        return "JSON"
    if origin is list:
        return "A,B"
    if annotation is int:
        return "N"
    return "X.Y" if annotation is float else "TEXT"


def _is_flag_pair(field: FieldInfo) -> bool:
    return field.annotation is bool


def _source_note(name: str, source: Source, settings: Settings) -> str:
    """The source with its detail: `profile cpu-tiny`, `env GPTOSS_PORT`, `default (auto: ...)`."""
    if name == "profile" and source == "default":
        return f"auto: {detected_profile().reason}"
    detail = {"profile": settings.profile, "env": f"GPTOSS_{name.upper()}", "file": "GPTOSS_CONFIG_FILE"}
    return f"{source} {detail[source]}" if source in detail else source


def render_help(settings: Settings, argv: list[str]) -> str:
    sources = value_sources(settings, argv)
    width = 110
    lines = [
        "usage: python -m service [--SETTING VALUE ...] [--print-config] [--help]",
        "",
        "Serve gpt-oss over gRPC (gptoss.v1.InferenceService) on vLLM's AsyncLLM.",
        "Every setting is a flag, a GPTOSS_<NAME> variable or a key of the JSON/YAML file named by",
        "GPTOSS_CONFIG_FILE; precedence: flag > env > file > profile > default.",
        f"Defaults shown are the effective values with profile {settings.profile}"
        f" ({_source_note('profile', sources['profile'], settings)}).",
        "",
        "options:",
        "  -h, --help           show this help (with the effective values) and exit",
        f"  {PRINT_CONFIG_FLAG}       print every setting, its effective value and its source, then exit",
    ]
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if name == "profile":
            head = f"  {flag_name(name)} {{{','.join(PROFILES)}}}"
        elif _is_flag_pair(field):
            head = f"  {flag_name(name)}, --no-{name.replace('_', '-')}"
        else:
            head = f"  {flag_name(name)} {_metavar(field)}"
        default = f"(default: {shown_value(name, value)}, {_source_note(name, sources[name], settings)})"
        text = f"{field.description or ''} {default}".strip()
        lines.append(head)
        indent = " " * 8
        lines.extend(
            textwrap.wrap(
                text, width, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False
            )
        )
    return "\n".join(lines) + "\n"


def render_config(settings: Settings, argv: list[str]) -> str:
    """One line per setting: name, effective value, source (flag/env/file/profile/default)."""
    sources = value_sources(settings, argv)
    rows = [
        (name, shown_value(name, getattr(settings, name)), sources[name]) for name in Settings.model_fields
    ]
    name_width = max(len(name) for name, _, _ in rows)
    value_width = min(60, max(len(value) for _, value, _ in rows))
    out = [f"{'setting':<{name_width}}  {'value':<{value_width}}  source"]
    for name, value, source in rows:
        detail = _source_note(name, source, settings)
        if name == "profile" and source == "default":
            detail = f"default ({detail})"
        out.append(f"{name:<{name_width}}  {value:<{value_width}}  {detail}")
    return "\n".join(out) + "\n"


def report_request(argv: list[str]) -> tuple[str, list[str]] | None:
    """("help" | "config", argv without the report flags) when argv asks for a report, else None."""
    rest = [arg for arg in argv if arg not in (*HELP_FLAGS, PRINT_CONFIG_FLAG)]
    if any(arg in HELP_FLAGS for arg in argv):
        return "help", rest
    if PRINT_CONFIG_FLAG in argv:
        return "config", rest
    return None


def render_report(kind: str, argv: list[str]) -> str:
    settings = load_settings(argv)
    return render_help(settings, argv) if kind == "help" else render_config(settings, argv)
