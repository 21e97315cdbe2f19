"""`bench run --prompt-text`: the CPU run asks harmony-tiny what it answers at length, so its chat
workload streams content deltas (TTFT/ITL measured) instead of a short refusal."""

from __future__ import annotations

from gptoss.v1 import inference_pb2 as pb

from bench.run_config import RunConfig, config_to_argv
from bench.workload import PromptFactory
from service.config import Settings
from service.planner import plan_inline

COUNT = "Count from 1 to 100."


def test_a_fixed_prompt_is_sent_verbatim_and_rendered_like_the_service() -> None:
    settings = Settings(profile="cpu-tiny")
    factory = PromptFactory(settings, target_tokens=1000, unique=True, text=COUNT)
    first, second = factory.prompt(0), factory.prompt(1)
    assert first.text == second.text == COUNT, "no per-request prefix: the model knows this prompt"
    request = pb.GenerateRequest(messages=[pb.Message(role=pb.ROLE_USER, content=COUNT)])
    assert first.token_ids == tuple(plan_inline(request, settings).prompt_token_ids)


def test_the_sized_filler_stays_the_default() -> None:
    prompt = PromptFactory(Settings(profile="cpu-tiny"), target_tokens=300, unique=False).prompt(0)
    assert "Summarise the following notes" in prompt.text and 250 <= len(prompt.token_ids) <= 300


def test_child_runs_get_the_same_prompt_text() -> None:
    base = {"frontends": ["grpc"], "workloads": ["chat"], "profile": "cpu-tiny", "overrides": {}}
    config = RunConfig(**base, concurrency=[1], prompt_tokens=64, output_tokens=8, prompt_text=COUNT)
    argv = config_to_argv(config, ["grpc"], 60.0)
    assert argv[argv.index("--prompt-text") + 1] == COUNT
    plain = RunConfig(**base, concurrency=[1], prompt_tokens=64, output_tokens=8)
    assert "--prompt-text" not in config_to_argv(plain, ["grpc"], 60.0)
