"""Errors from the real service (validation, context length, auth) through the gateway, as the SDK sees them.

What only the service checks (tool-name pattern, stop strings, tool_choice against the tools) reaches
the caller as the service's INVALID_ARGUMENT, a 400 naming the param.
"""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.gateway.gateway_thread import GatewayThread
from tests.support.server_thread import ServerThread

pytestmark = pytest.mark.engine

USER = [{"role": "user", "content": "Say hello."}]


def test_unknown_model(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-4-nope", messages=USER, max_tokens=4)
    assert info.value.code == "model_not_found" and info.value.param == "model"
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="gpt-4-nope", input="x", stream=True)


def test_context_too_long(client: openai.OpenAI, model_id: str) -> None:
    long = "hello " * 5000  # ~5000 tokens > the 4096-token context of cpu-tiny
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(
                model=model_id, messages=[{"role": "user", "content": long}], stream=stream
            )
        assert info.value.code == "context_length_exceeded" and info.value.param == "messages"
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=model_id, messages=USER, max_tokens=4095)
    assert info.value.code == "context_length_exceeded"


def test_bad_tool_schema(client: openai.OpenAI, model_id: str) -> None:
    tool: Any = {"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=model_id, messages=USER, tools=[tool], max_tokens=4)
    assert info.value.param == "tools[0].parameters"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"temperature": 2.5}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"frequency_penalty": 3}, "frequency_penalty"),
        ({"n": 129}, "n"),
        ({"logit_bias": {"999999": 1}}, "logit_bias"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
            "response_format.json_schema.schema",
        ),
        ({"extra_body": {"max_reasoning_tokens": -1}}, "max_reasoning_tokens"),
        ({"stop": ["a", ""]}, "stop"),
        # Checked by the service only (the gateway translates and passes its INVALID_ARGUMENT on):
        ({"stop": [str(i) for i in range(17)]}, "stop"),
        ({"tool_choice": "required"}, "tool_choice"),
        (
            {
                "tools": [{"type": "function", "function": {"name": "f"}}],
                "tool_choice": {"type": "function", "function": {"name": "nope"}},
            },
            "tool_choice",
        ),
        # The service's spelling of the param (tools[i] is the function): same field.
        ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, "tools[0].name"),
    ],
)
def test_out_of_range_and_unsupported(
    client: openai.OpenAI, model_id: str, extra: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=model_id, messages=USER, **extra)
    assert info.value.param == param


def test_request_shape_errors(live_gateway: GatewayThread, client: openai.OpenAI, model_id: str) -> None:
    url = live_gateway.url + "/v1/chat/completions"
    assert httpx.post(url, content=b"{nope", headers={"content-type": "application/json"}).status_code == 400
    for body in ({"model": model_id}, {"model": model_id, "messages": []}):
        response = httpx.post(url, json=body)
        assert response.status_code == 400 and response.json()["error"]["param"] == "messages"
    with pytest.raises(openai.NotFoundError) as info:  # stored responses exist now: an unknown one is 404
        client.responses.create(model=model_id, input="x", previous_response_id="resp_123")
    assert info.value.param == "previous_response_id"


def test_auth_on(live_server: ServerThread, start_gateway: Any, model_id: str) -> None:
    gateway = start_gateway([live_server.target], api_keys=["sk-test"])
    denied = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        denied.chat.completions.create(model=model_id, messages=USER, max_tokens=2)
    with pytest.raises(openai.AuthenticationError):
        denied.models.list()
    allowed = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-test", max_retries=0)
    assert allowed.chat.completions.create(model=model_id, messages=USER, max_tokens=2).usage is not None
