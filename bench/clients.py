"""One streaming request per frontend, timed the same way everywhere.

A request's TTFT is the time from sending it to the first output event that carries generated
tokens (a TokenIds / text message, an SSE chunk with text or token ids, an engine step); ITL
samples are the gaps between such events, divided by the tokens each carried.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from bench.stats import RequestResult
from bench.workload import Prompt

if TYPE_CHECKING:
    import aiohttp
    import grpc.aio

    from service.engine import Engine, SamplingOptions

ClientKind = Literal["grpc-raw", "grpc-chat", "openai-chat", "openai-completions"]


@dataclass(frozen=True)
class ClientSpec:
    """What a load-generator process needs to build its client (picklable)."""

    kind: ClientKind
    target: str  # host:port (gRPC) or base URL (HTTP)
    model: str
    temperature: float
    timeout_s: float
    ignore_eos: bool = (
        True  # SMG refuses it (400 ignore_eos_not_supported): the shaping processor fixes length
    )


class Client(Protocol):
    async def open(self) -> None: ...

    async def request(self, prompt: Prompt, max_tokens: int) -> RequestResult: ...

    async def close(self) -> None: ...


class Tally:
    """Live counters for the progress display."""

    def __init__(self) -> None:
        self.tokens = 0
        self.done = 0


class _Timer:
    """Accumulates one request's output events."""

    def __init__(self, tally: Tally) -> None:
        self.start = time.perf_counter()
        self.first: float | None = None
        self.last = 0.0
        self.events = 0
        self.tokens = 0
        self.itl: list[float] = []
        self._tally = tally

    def event(self, tokens: int) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        elif tokens > 0:
            self.itl.extend([(now - self.last) / tokens] * tokens)
        self.last = now
        self.events += 1
        self.tokens += tokens
        self._tally.tokens += tokens

    def result(self, output_tokens: int, prompt_tokens: int, error: str = "") -> RequestResult:
        self._tally.done += 1
        return RequestResult(
            ok=not error,
            start=self.start,
            end=time.perf_counter(),
            ttft=None if self.first is None else self.first - self.start,
            output_tokens=output_tokens or self.tokens,
            prompt_tokens=prompt_tokens,
            events=self.events,
            itl=self.itl,
            error=error,
        )


class GrpcClient:
    """Our `gptoss.v1.InferenceService/Generate` through the generated stubs (grpc.aio)."""

    def __init__(self, spec: ClientSpec, tally: Tally) -> None:
        self._spec = spec
        self._tally = tally
        self._raw = spec.kind == "grpc-raw"
        self._channel: grpc.aio.Channel | None = None
        self._stub: Any = None

    async def open(self) -> None:
        import grpc.aio
        from gptoss.v1 import inference_pb2_grpc

        self._channel = grpc.aio.insecure_channel(
            self._spec.target, options=[("grpc.max_receive_message_length", 64 << 20)]
        )
        self._stub = inference_pb2_grpc.InferenceServiceStub(self._channel)

    async def request(self, prompt: Prompt, max_tokens: int) -> RequestResult:
        import grpc
        from gptoss.v1 import inference_pb2 as pb

        fields: dict[str, Any] = {
            "max_tokens": max_tokens,
            "ignore_eos": True,
            "temperature": self._spec.temperature,
            "request_id": f"bench-{uuid.uuid4().hex}",
        }
        if self._raw:
            request = pb.GenerateRequest(prompt_token_ids=prompt.token_ids, **fields)
        else:
            request = pb.GenerateRequest(
                messages=[pb.Message(role=pb.ROLE_USER, content=prompt.text)], **fields
            )
        timer = _Timer(self._tally)
        output_tokens = prompt_tokens = 0
        try:
            async for response in self._stub.Generate(request, timeout=self._spec.timeout_s):
                kind = response.WhichOneof("event")
                if kind == "token_ids":
                    timer.event(len(response.token_ids.token_ids))
                elif kind == "done":
                    output_tokens = response.done.usage.completion_tokens
                    prompt_tokens = response.done.usage.prompt_tokens
                else:  # reasoning / content / tool-call text: about one engine step each
                    timer.event(1)
        except grpc.aio.AioRpcError as exc:
            return timer.result(0, 0, f"{exc.code().name}: {exc.details()}")
        return timer.result(output_tokens, prompt_tokens)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()


class OpenAIClient:
    """OpenAI HTTP streaming: `/v1/chat/completions` (gateway, vllm serve) or `/v1/completions`
    with a token-id prompt (vllm serve). Parses only what it times: SSE lines, then JSON."""

    def __init__(self, spec: ClientSpec, tally: Tally) -> None:
        self._spec = spec
        self._tally = tally
        self._chat = spec.kind == "openai-chat"
        self._url = spec.target.rstrip("/") + ("/v1/chat/completions" if self._chat else "/v1/completions")
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        import aiohttp

        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, force_close=False),
            timeout=aiohttp.ClientTimeout(total=self._spec.timeout_s),
        )

    def _body(self, prompt: Prompt, max_tokens: int) -> bytes:
        body: dict[str, Any] = {
            "model": self._spec.model,
            "max_tokens": max_tokens,
            "temperature": self._spec.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self._spec.ignore_eos:
            body["ignore_eos"] = True  # vLLM's extension, which our gateway takes too
        if self._chat:
            body["messages"] = [{"role": "user", "content": prompt.text}]
        else:
            body["prompt"] = list(prompt.token_ids)
            body["return_token_ids"] = True
        return json.dumps(body).encode()

    async def request(self, prompt: Prompt, max_tokens: int) -> RequestResult:
        import aiohttp

        assert self._session is not None
        data = self._body(prompt, max_tokens)
        timer = _Timer(self._tally)
        output_tokens = prompt_tokens = 0
        try:
            async with self._session.post(
                self._url, data=data, headers={"Content-Type": "application/json"}
            ) as response:
                if response.status != 200:
                    text = (await response.text())[:200]
                    return timer.result(0, 0, f"HTTP {response.status}: {text}")
                async for line in response.content:
                    if not line.startswith(b"data: "):
                        continue
                    payload = line[6:].strip()
                    if payload == b"[DONE]":
                        break
                    chunk = json.loads(payload)
                    if "error" in chunk:
                        return timer.result(0, 0, f"stream error: {json.dumps(chunk['error'])[:200]}")
                    usage = chunk.get("usage")
                    if usage:
                        output_tokens = usage.get("completion_tokens") or 0
                        prompt_tokens = usage.get("prompt_tokens") or 0
                    choices = chunk.get("choices")
                    if choices:
                        tokens = self._tokens(choices[0])
                        if tokens:
                            timer.event(tokens)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return timer.result(0, 0, f"{type(exc).__name__}: {exc}")
        return timer.result(output_tokens, prompt_tokens)

    def _tokens(self, choice: dict[str, Any]) -> int:
        """Generated tokens a chunk carries: exact with token ids, else one per non-empty delta."""
        if not self._chat:
            ids = choice.get("token_ids")
            return len(ids) if ids else (1 if choice.get("text") else 0)
        delta = choice.get("delta") or {}
        text = delta.get("content") or delta.get("reasoning_content") or delta.get("reasoning")
        return 1 if text or delta.get("tool_calls") else 0

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class EngineClient:
    """The engine in-process (`service.engine.VllmEngine`): no network, no Harmony; the ceiling."""

    def __init__(self, engine: Engine, options: SamplingOptions, tally: Tally) -> None:
        self._engine = engine
        self._options = options
        self._tally = tally

    async def open(self) -> None:
        return None

    async def request(self, prompt: Prompt, max_tokens: int) -> RequestResult:
        from dataclasses import replace

        options = (
            self._options
            if max_tokens == self._options.max_tokens
            else replace(self._options, max_tokens=max_tokens)
        )
        timer = _Timer(self._tally)
        try:
            async for step in self._engine.generate(
                f"bench-{uuid.uuid4().hex}", list(prompt.token_ids), options
            ):
                if step.token_ids:
                    timer.event(len(step.token_ids))
        except Exception as exc:
            return timer.result(0, 0, f"{type(exc).__name__}: {exc}")
        return timer.result(timer.tokens, len(prompt.token_ids))

    async def close(self) -> None:
        return None


def make_client(spec: ClientSpec, tally: Tally) -> Client:
    if spec.kind in ("grpc-raw", "grpc-chat"):
        return GrpcClient(spec, tally)
    return OpenAIClient(spec, tally)
