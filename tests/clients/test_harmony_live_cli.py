"""The `gptoss` console script against the trained harmony-tiny model on the real engine."""

from __future__ import annotations

import json

import pytest

from tests.clients.e2e_support import gptoss
from tests.support.server_thread import ServerThread

pytestmark = pytest.mark.engine


def test_chat_shows_reasoning_and_the_answer(live_server: ServerThread) -> None:
    result = gptoss("chat", "--target", live_server.target, "--temperature", "0", "Hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello! How can I help you today?\n"
    assert "[reasoning] The user greets me. I should greet them back." in result.stderr
    assert "finish=stop" in result.stderr


def test_chat_json_has_reasoning_content_and_usage(live_server: ServerThread) -> None:
    result = gptoss("chat", "--target", live_server.target, "--temperature", "0", "--json", "Hi")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["reasoning"] == "The user greets me. I should greet them back."
    assert data["content"] == "Hello! How can I help you today?" and data["finish_reason"] == "stop"
    assert data["usage"]["reasoning_tokens"] > 0
