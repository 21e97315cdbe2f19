"""`python -m service --help` shows effective values and a description per flag; `--print-config`
shows every setting's value and source. Both exit without starting an engine."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from service.__main__ import main
from service.config import PROFILES, Settings, load_settings
from service.settings_report import flag_name, render_config, render_help, shown_value

REPO = Path(__file__).resolve().parents[2]


def flag_blocks(help_text: str) -> dict[str, str]:
    """Each `--flag` line of the help with the description lines under it."""
    blocks: dict[str, str] = {}
    current = ""
    for line in help_text.splitlines():
        match = re.match(r"  (--[a-z-]+)", line)
        if match:
            current = match.group(1)
            blocks[current] = line
        elif current and line.startswith("        "):
            blocks[current] += " " + line.strip()
    return blocks


def test_help_runs_without_an_engine_and_exits_0() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service", "--help"], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    assert "--print-config" in result.stdout and "effective values with profile" in result.stdout


def test_every_setting_is_a_described_flag_without_pydantic_type_names() -> None:
    text = render_help(Settings(profile="cpu-tiny"), [])
    blocks = flag_blocks(text)
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description"
        assert field.description in " ".join(blocks[flag_name(name)].split()), name
    for pydantic_word in ("default factory", "dict[", "list[", "{int,null}", " str ", " int ", "None]"):
        assert pydantic_word not in text, pydantic_word


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_help_defaults_are_the_profiles_effective_values(profile: str) -> None:
    argv = ["--profile", profile]
    settings = load_settings(argv)
    blocks = flag_blocks(render_help(settings, argv))
    for name in Settings.model_fields:
        shown = shown_value(name, getattr(settings, name))
        assert f"(default: {shown}," in " ".join(blocks[flag_name(name)].split()), name
    assert f"(default: {settings.max_model_len}, profile {profile})" in blocks["--max-model-len"]


def test_profile_flag_lists_its_choices_and_the_auto_selected_default() -> None:
    block = flag_blocks(render_help(Settings(), []))["--profile"]
    assert "{" + ",".join(PROFILES) + "}" in block
    assert re.search(r"\(default: [a-z0-9-]+, auto: ", block), block


def test_every_shown_value_parses_back_through_its_flag() -> None:
    """What help shows is what a user may type: each flag with its shown value gives that value."""
    settings = Settings(profile="gpt-oss-120b-tp4", api_keys=["k"], tls_cert="/c.pem")
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if name == "api_keys":
            argv = [flag_name(name), "k1,k2"]
            expected: object = ["k1", "k2"]
        elif field.annotation is bool:
            argv, expected = [flag_name(name) if value else "--no-" + name.replace("_", "-")], value
        else:
            shown = shown_value(name, value)
            argv, expected = [flag_name(name), "null" if shown == "unset" else shown], value
        parsed = load_settings(["--profile", "gpt-oss-120b-tp4", *argv])
        assert getattr(parsed, name) == expected, (name, argv)


def test_print_config_names_every_source(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "settings.json"
    file.write_text(json.dumps({"max_tools": 9}))
    monkeypatch.setenv("GPTOSS_CONFIG_FILE", str(file))
    monkeypatch.setenv("GPTOSS_MAX_MESSAGES", "77")
    monkeypatch.setenv("GPTOSS_API_KEYS", "secret-key")
    assert main(["--print-config", "--profile", "cpu-tiny", "--max-model-len", "2048"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(rows) == set(Settings.model_fields)
    assert re.search(r"max_model_len\s+2048\s+flag$", rows["max_model_len"])
    assert re.search(r"max_messages\s+77\s+env GPTOSS_MAX_MESSAGES$", rows["max_messages"])
    assert re.search(r"max_tools\s+9\s+file GPTOSS_CONFIG_FILE$", rows["max_tools"])
    assert re.search(r"max_num_seqs\s+64\s+profile cpu-tiny$", rows["max_num_seqs"])
    assert re.search(r"port\s+50051\s+default$", rows["port"])
    assert "secret-key" not in out and re.search(r"api_keys\s+1 key\(s\)", rows["api_keys"])


def test_print_config_shows_why_the_profile_was_picked() -> None:
    out = render_config(Settings(), [])
    assert re.search(r"^profile\s+\S+\s+default \(auto: ", out, flags=re.M), out
