"""`make run`'s first answer (service/first_answer.py) against the live stack: the default model
answers "Hi" with reasoning, then content, and the supervisor's line shows both."""

from __future__ import annotations

import json

from service import first_answer
from tests.support.gateway_thread import GatewayThread


def test_the_first_answer_has_reasoning_and_content(live_gateway: GatewayThread) -> None:
    answer = first_answer.ask(live_gateway.url)
    assert answer["reasoning"].strip() and answer["content"].strip(), answer
    line = first_answer.describe(live_gateway.url)
    assert line.startswith("first answer (") and json.dumps(answer["content"]) in line


def test_no_stack_is_one_line_not_a_crash() -> None:
    line = first_answer.describe("http://127.0.0.1:9")  # nothing listens on the discard port
    assert line.startswith("first answer: none (")
