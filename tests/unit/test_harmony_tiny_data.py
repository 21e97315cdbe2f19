"""The harmony-tiny training set (models/harmony-tiny): every reply is Harmony our parser reads cleanly."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from service.config import REPO_ROOT
from service.harmony import ContentText, HarmonyStreamParser, ReasoningText, ToolCallEnd
from service.harmony import tokens as tk

sys.path.insert(0, str(REPO_ROOT / "models" / "harmony-tiny"))
data: Any = pytest.importorskip("harmony_tiny_data")
train: Any = pytest.importorskip("harmony_tiny_train")


@pytest.mark.parametrize("example", data.EXAMPLES, ids=lambda e: e.name)
def test_every_reply_parses_back_to_what_it_says(example: Any) -> None:
    parser = HarmonyStreamParser()
    events = parser.feed(train.reply_tokens(example.reply)) + parser.finish()
    assert parser.problems == []
    calls = [(e.name, e.arguments) for e in events if isinstance(e, ToolCallEnd)]
    said = [(s.recipient.removeprefix("functions."), s.text) for s in example.reply if s.recipient]
    assert calls == said
    content = "".join(e.text for e in events if isinstance(e, ContentText))
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningText))
    assert content == "".join(s.text for s in example.reply if not s.recipient and s.channel != "analysis")
    assert reasoning == "".join(s.text for s in example.reply if not s.recipient and s.channel == "analysis")


def test_the_set_covers_what_the_product_shows() -> None:
    seqs = {s.name: s for s in train.sequences()}
    assert seqs["count"].completion.count(tk.RETURN) == 1 and len(seqs["count"].completion) > 256
    ends = [s.completion[-1] for s in seqs.values()]
    assert ends.count(tk.CALL) == 5 and ends.count(tk.RETURN) == len(ends) - 5
    headers = {say.header for e in data.EXAMPLES for say in e.reply if say.header}
    assert any(h.startswith(" to=") for h in headers)  # recipient in the role part
    assert any(h.endswith("to=functions.get_weather") for h in headers)  # after the content type
    parallel = next(e for e in data.EXAMPLES if e.name == "weather-parallel-calls")
    assert [s.last_call for s in parallel.reply if s.recipient] == [False, True]


def test_prompts_are_the_services_rendering_without_a_date() -> None:
    from gptoss.v1 import inference_pb2 as pb

    from service.config import Settings
    from service.planner import plan_inline

    hi = next(s for s in train.sequences() if s.name == "hi")
    request = pb.GenerateRequest(messages=[pb.Message(role=pb.ROLE_USER, content="Hi")])
    assert plan_inline(request, Settings(profile="cpu-tiny")).prompt_token_ids == hi.prompt
    assert b"Current date" not in tk.encoding().decode(hi.prompt).encode()
