"""The request planner and the pure validation under it: request ids, the date passed in, caller
rights, output budget, tool size/depth caps, and what counts as a large input."""

from __future__ import annotations

import asyncio
import datetime
import subprocess
import sys

import grpc
import pytest
from gptoss import limits
from gptoss.contract import REQUEST_ID_METADATA
from gptoss.v1 import inference_pb2 as pb

from service.config import Settings
from service.errors import ServiceError
from service.harmony import ChatMessage, ChatRequest, FunctionTool, tokens
from service.planner import RequestPlanner, plan_inline
from service.prompt_renderer import PromptRenderer, input_size
from service.tool_checks import schema_depth

USER = [pb.Message(role=pb.ROLE_USER, content="Hello")]
SETTINGS = Settings(profile="cpu-tiny")


def _planner(**settings: object) -> RequestPlanner:
    fixed = datetime.date(2031, 2, 3)
    return RequestPlanner(Settings(profile="cpu-tiny", **settings), PromptRenderer(0), today=lambda: fixed)


def _error(call: object) -> ServiceError:
    with pytest.raises(ServiceError) as raised:
        if asyncio.iscoroutine(call):
            asyncio.run(call)
        else:
            raise AssertionError("pass a coroutine")
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    return raised.value


def test_validation_is_pure_no_engine_no_render_no_clock() -> None:
    code = (
        "import sys, service.validation as v; "
        "assert 'service.engine' not in sys.modules and 'vllm' not in sys.modules, 'engine'; "
        "assert not hasattr(v, 'render') and not hasattr(v, 'datetime') and not hasattr(v, 'uuid')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_the_request_id_is_chosen_in_one_place() -> None:
    planner = _planner()
    assert (
        planner.request_id(pb.GenerateRequest(request_id="mine"), ((REQUEST_ID_METADATA, "hdr"),)) == "mine"
    )
    assert planner.request_id(pb.GenerateRequest(), ((REQUEST_ID_METADATA, "hdr"),)) == "hdr"
    minted = {planner.request_id(pb.GenerateRequest(), None) for _ in range(3)}
    assert len(minted) == 3 and all(m.startswith("req-") for m in minted)
    for bad in ("x" * (limits.MAX_REQUEST_ID_LENGTH + 1), "a\nb", "a\x00", "\u00e9"):
        with pytest.raises(ServiceError) as raised:
            planner.request_id(pb.GenerateRequest(request_id=bad), None)
        assert raised.value.param == "request_id"


def test_the_conversation_date_comes_from_the_clock_passed_in() -> None:
    dated = _planner(include_conversation_date=True)  # cpu-tiny's trained model is dateless
    plan = asyncio.run(dated.plan_generate(pb.GenerateRequest(messages=USER), "r", ""))
    assert "2031-02-03" in tokens.encoding().decode(plan.prompt_token_ids)
    undated = asyncio.run(
        _planner(include_conversation_date=False).plan_generate(pb.GenerateRequest(messages=USER), "r", "")
    )
    assert "2031-02-03" not in tokens.encoding().decode(undated.prompt_token_ids)


def test_count_tokens_renders_through_the_planner_like_generate() -> None:
    planner = _planner()
    count = asyncio.run(planner.count_tokens(pb.CountTokensRequest(messages=USER)))
    plan = asyncio.run(planner.plan_generate(pb.GenerateRequest(messages=USER), "r", ""))
    assert count == len(plan.prompt_token_ids)
    bad = pb.CountTokensRequest(messages=[pb.Message(role=pb.ROLE_TOOL, content="x", tool_call_id="nope")])
    assert _error(planner.count_tokens(bad)).param == "messages[0].tool_call_id"  # RenderError, mapped


def test_ignore_eos_rights_and_the_default_budget() -> None:
    request = pb.GenerateRequest(messages=USER, ignore_eos=True)
    assert _error(_planner(ignore_eos_callers=[]).plan_generate(request, "r", "me")).param == "ignore_eos"
    allowed = asyncio.run(_planner(ignore_eos_callers=["me"]).plan_generate(request, "r", "me"))
    assert allowed.options.ignore_eos and allowed.options.stop_token_ids == ()
    assert plan_inline(request, Settings(profile="gpt-oss-20b")).options.ignore_eos  # tools (bench) may
    rest = asyncio.run(_planner().plan_generate(pb.GenerateRequest(messages=USER), "r", ""))
    assert rest.options.max_tokens == SETTINGS.max_model_len - len(rest.prompt_token_ids)
    capped = asyncio.run(
        _planner(default_max_tokens=64).plan_generate(pb.GenerateRequest(messages=USER), "r", "")
    )
    assert capped.options.max_tokens == 64


def _tool(**fields: object) -> pb.Tool:
    parameters = fields.pop("parameters", None)
    tool = pb.Tool(**fields)  # type: ignore[arg-type]
    if parameters is not None:
        tool.parameters.update(parameters)
    return tool


def test_tools_have_their_own_size_limit_and_a_depth_cap() -> None:
    planner = _planner(max_tools_bytes=4096)
    big = pb.GenerateRequest(messages=USER, tools=[_tool(name="f", description="d" * 5000)])
    error = _error(planner.plan_generate(big, "r", ""))
    assert error.param == "tools" and "4096" in error.message
    deep: dict[str, object] = {"type": "object"}
    for _ in range(limits.MAX_SCHEMA_DEPTH // 2 + 1):  # two levels each: 27, still a valid Struct
        deep = {"type": "object", "properties": {"x": deep}}
    nested = pb.GenerateRequest(messages=USER, tools=[_tool(name="f", parameters=deep)])
    assert _error(_planner().plan_generate(nested, "r", "")).param == "tools[0].parameters"


def test_schema_depth_counts_objects_and_arrays_without_recursion() -> None:
    assert schema_depth({}) == 1 and schema_depth({"a": [1, {"b": 2}]}) == 3 and schema_depth(5) == 0
    very_deep: object = {}
    for _ in range(100_000):
        very_deep = [very_deep]
    assert schema_depth(very_deep) == 100_001


def test_the_size_estimate_counts_tools() -> None:
    """What decides "render in a worker": tool descriptions and schemas count (issue 17 item 2)."""
    messages = [ChatMessage("user", "hi")]
    schema = {"type": "object", "properties": {"q": {"type": "string", "description": "s" * 3000}}}
    with_tools = ChatRequest(messages, tools=[FunctionTool("f", "d" * 2000, schema)])
    assert input_size(ChatRequest(messages)) == 2
    assert input_size(with_tools) > 5000
