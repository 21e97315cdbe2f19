"""A test double for the engine: emits a fixed token script, honours max_tokens and stop tokens.

Used to pin exact token sequences (tool calls, malformed Harmony) and for fast replicas; the
product path always runs vLLM. Also the script builders and the request and stub the tests on it share.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence

import grpc
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc

from service.engine import EngineStep, EngineTimings, SamplingOptions
from service.harmony import tokens as tk
from service.sampling import TokenLogprobs
from tests.support.server_thread import ServerThread

Script = Callable[[list[int]], Sequence[Sequence[int]]]
USER = [pb.Message(role=pb.ROLE_USER, content="Weather in Paris?")]


def toks(text: str) -> list[int]:
    return list(tk.encoding().encode(text, allowed_special="all"))


def one_token_per_step(text: str) -> list[list[int]]:
    return [[t] for t in toks(text)]


def streaming_text(steps: int) -> list[list[int]]:
    """A final-channel message that yields one content event per step."""
    return [toks("<|channel|>final<|message|>"), *([toks(" a")] * steps)]


def stub_for(server: ServerThread) -> tuple[grpc.Channel, inference_pb2_grpc.InferenceServiceStub]:
    channel = grpc.insecure_channel(server.target)
    return channel, inference_pb2_grpc.InferenceServiceStub(channel)


class ScriptedEngine:
    version = "scripted"

    def __init__(self, script: Script | Sequence[Sequence[int]], step_delay: float = 0.0) -> None:
        self._script: Script = script if callable(script) else (lambda _prompt, s=script: s)  # type: ignore[misc]
        self.step_delay = step_delay
        self.running: set[str] = set()
        self.aborted: list[str] = []
        self.prompts: list[list[int]] = []
        self.options: list[SamplingOptions] = []
        self.requests = 0
        self._errored = False

    @property
    def errored(self) -> bool:
        return self._errored

    def kill(self) -> None:
        """Simulate engine-core death."""
        self._errored = True

    async def generate(
        self, request_id: str, prompt_token_ids: list[int], options: SamplingOptions
    ) -> AsyncIterator[EngineStep]:
        self.requests += 1
        self.prompts.append(list(prompt_token_ids))
        self.options.append(options)
        self.running.add(request_id)
        produced = 0
        try:
            for chunk in self._script(prompt_token_ids):
                if self._errored:
                    from service.engine import EngineDeadError

                    raise EngineDeadError("scripted engine killed")
                if self.step_delay:
                    await asyncio.sleep(self.step_delay)
                else:
                    await asyncio.sleep(0)
                out: list[int] = []
                for token in chunk:
                    out.append(token)
                    produced += 1
                    if token in options.stop_token_ids:
                        yield self._final(out, "stop", token, options)
                        return
                    if produced >= options.max_tokens:
                        yield self._final(out, "length", None, options)
                        return
                yield EngineStep(token_ids=out, logprobs=scripted_logprobs(out, options))
            yield self._final([], "length", None, options)
        finally:
            self.running.discard(request_id)

    @staticmethod
    def _final(tokens: list[int], reason: str, stop: int | None, options: SamplingOptions) -> EngineStep:
        timings = EngineTimings(queue_wait=0.0, decode=0.0)
        return EngineStep(tokens, True, reason, stop, 0, timings, scripted_logprobs(tokens, options))

    async def abort(self, request_id: str) -> None:
        if request_id in self.running:
            self.aborted.append(request_id)
        self.running.discard(request_id)

    def num_unfinished_requests(self) -> int:
        return len(self.running)

    async def shutdown(self) -> None:
        return None


def scripted_logprobs(tokens: list[int], options: SamplingOptions) -> tuple[TokenLogprobs, ...] | None:
    """Pinned fake logprobs: token t has logprob -(t % 10) / 10; the alternatives are t, t+1, ..."""
    if options.logprobs is None:
        return None
    return tuple(
        TokenLogprobs(t, -(t % 10) / 10, tuple((t + i, -(t % 10) / 10 - i) for i in range(options.logprobs)))
        for t in tokens
    )
