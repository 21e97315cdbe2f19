"""The reasoning budget, pinned token by token on the scripted engine.

Without a grammar the generation loop enforces it: abort the engine request at the budget, force
`<|end|><|start|>assistant`, continue in a second request. Under a grammar the budget is the
grammar's own (one engine request; tests/unit/test_structured_checks.py reads the cap)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from gptoss.v1 import inference_pb2 as pb

from service.harmony.tokens import encoding
from service.reasoning_budget import FORCED_ANSWER
from tests.conftest import wait_until
from tests.integration.test_generate_live import assert_well_formed
from tests.support.scripted_engine import USER, ScriptedEngine, stub_for, toks
from tests.support.server_thread import ServerThread
from tests.support.structured import json_schema_format, text_of

ServerFactory = Callable[..., ServerThread]
HEADER = toks("<|channel|>analysis<|message|>")
THINKING = toks(" one two three four five six seven eight")
ANSWER = toks("<|channel|>final<|message|>The answer.<|return|>")


def _continues(prompt: list[int]) -> bool:
    """The answer request: its prompt holds the cut analysis (every chat prompt ends like FORCED_ANSWER)."""
    tail = [*HEADER, *THINKING[:1]]
    return any(prompt[i : i + len(tail)] == tail for i in range(len(prompt)))


def _script(prompt: list[int]) -> list[list[int]]:
    """Reasoning that never ends, unless the analysis was cut (the answer request)."""
    if _continues(prompt):
        return [[t] for t in ANSWER]
    return [HEADER, *([t] for t in THINKING * 20)]


def _request(**fields: object) -> pb.GenerateRequest:
    return pb.GenerateRequest(messages=USER, **fields)  # type: ignore[arg-type]


def _text(tokens: list[int]) -> str:
    text: str = encoding().decode(tokens)
    return text


def test_budget_cuts_the_analysis_and_continues_with_the_answer(scripted_server: ServerFactory) -> None:
    server = scripted_server(_script)
    channel, stub = stub_for(server)
    with channel:
        responses = list(stub.Generate(_request(max_reasoning_tokens=4, max_tokens=200), timeout=10))
    done = assert_well_formed(responses)
    engine = server.engine
    assert isinstance(engine, ScriptedEngine)
    kept = THINKING[:3]  # the forced <|end|> is the budget's fourth reasoning token
    assert engine.requests == 1 + 2  # the server's warm-up, then the two phases
    assert engine.prompts[2] == [*engine.prompts[1], *HEADER, *kept, *FORCED_ANSWER]
    first, second = engine.options[1:]
    assert first.structural_tag is None and second.structural_tag is None
    assert second.max_tokens == 200 - len(HEADER) - 3 - len(FORCED_ANSWER)
    assert text_of(responses, "reasoning") == _text(kept)
    assert text_of(responses, "content") == "The answer."
    assert done.finish_reason == pb.FINISH_REASON_STOP
    assert done.usage.completion_tokens == len(HEADER) + 3 + len(FORCED_ANSWER) + len(ANSWER)
    assert done.usage.reasoning_tokens == 4  # never more than max_reasoning_tokens
    assert engine.num_unfinished_requests() == 0


def test_no_room_left_after_the_budget_is_length(scripted_server: ServerFactory) -> None:
    server = scripted_server(_script)
    channel, stub = stub_for(server)
    budget_and_header = len(HEADER) + 3 + len(FORCED_ANSWER)
    with channel:
        request = _request(max_reasoning_tokens=4, max_tokens=budget_and_header)
        done = assert_well_formed(list(stub.Generate(request, timeout=10)))
    assert done.finish_reason == pb.FINISH_REASON_LENGTH
    assert done.usage.completion_tokens == budget_and_header
    engine = server.engine
    assert isinstance(engine, ScriptedEngine) and engine.requests == 1 + 1


def test_a_grammar_carries_the_budget_in_one_engine_request(scripted_server: ServerFactory) -> None:
    """The server default applies when constrained; xgrammar (not the loop) counts the analysis."""
    answer = '<|channel|>final <|constrain|>json<|message|>{"b":2}<|return|>'
    server = scripted_server(lambda _prompt: [[t] for t in toks(answer)], structured_reasoning_budget=5)
    channel, stub = stub_for(server)
    fmt = json_schema_format({"type": "object"})
    with channel:
        responses = list(stub.Generate(_request(response_format=fmt, max_tokens=300), timeout=10))
        zero = _request(response_format=fmt, max_tokens=300, max_reasoning_tokens=0)
        list(stub.Generate(zero, timeout=10))
    engine = server.engine
    assert isinstance(engine, ScriptedEngine) and engine.requests == 1 + 2
    capped, no_analysis = (options.structural_tag or "" for options in engine.options[1:])
    assert re.findall(r'"max_tokens":(\d+)', capped) == ["4"]  # 4 text tokens + <|end|> = 5
    assert "analysis" not in no_analysis  # budget 0: the answer comes first
    assert json.loads(text_of(responses, "content")) == {"b": 2}


def test_cancel_in_the_answer_phase_aborts_the_answer_request(scripted_server: ServerFactory) -> None:
    def slow(prompt: list[int]) -> list[list[int]]:
        if _continues(prompt):
            return [toks("<|channel|>final<|message|>The")] + [toks(" word")] * 500
        return _script(prompt)

    server = scripted_server(slow, step_delay=0.01)
    channel, stub = stub_for(server)
    with channel:
        call = stub.Generate(_request(max_reasoning_tokens=3, max_tokens=3000), timeout=10)
        for response in call:
            if response.HasField("content"):
                break
        call.cancel()
    engine = server.engine
    assert isinstance(engine, ScriptedEngine)
    assert wait_until(lambda: engine.num_unfinished_requests() == 0)
    assert engine.requests == 1 + 2
