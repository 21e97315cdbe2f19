"""Apply a step's grammar bitmask from reused pinned buffers, not a new pinned tensor per step.

vLLM's `apply_grammar_bitmask` (0.26 and 0.32) reorders the scheduler's bitmask rows into the
batch's order in a fresh `torch.full(..., pin_memory=True)` every step. py-spy on the H200's engine
core at 64 constrained streams (bench/engine_profile.py) put 30% of the step loop on that one line,
more than the bitmask fill itself (20%). This is the same function over two pinned buffers that
are allocated once and used in turn: each is rewritten only after its previous host-to-device copy
has completed (a CUDA event, long done by then), so nothing waits on the GPU.

`install()` replaces the function where vLLM defines it and, if vLLM's GPU model runner is loaded
already, the name that runner imported. Both orders happen: on a GPU worker the runner is imported
only when the device is set up, after the worker extension (service/vllm_worker_extension.py, which
vLLM imports wherever the model runs and which calls this); a CPU worker has it loaded before. The
runner's `from ... import` then picks up ours. CPU logits keep vLLM's function.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import sys
from typing import Any

import numpy as np
import torch
import xgrammar as xgr

UTILS_MODULE = "vllm.v1.structured_output.utils"  # where vLLM defines apply_grammar_bitmask
RUNNER_MODULE = "vllm.v1.worker.gpu_model_runner"  # which imports it by name
_PARAMETERS = ["scheduler_output", "grammar_output", "input_batch", "logits"]

# Under "vllm": its handler prints this in the engine process.
log = logging.getLogger("vllm.gptoss_grammar_apply")


class Staging:
    """Two host int32 buffers used in turn, grown as needed; pinned with a CUDA event each on GPU."""

    def __init__(self, pinned: bool) -> None:
        self._pinned = pinned
        self._buffers: list[torch.Tensor | None] = [None, None]
        self._events: list[Any] = [None, None]
        self._turn = 0

    def take(self, count: int) -> torch.Tensor:
        """`count` int32s to write, free of any copy still reading them."""
        self._turn ^= 1
        event = self._events[self._turn]
        if event is not None:
            event.synchronize()  # the copy from two steps ago: complete in practice
        buffer = self._buffers[self._turn]
        if buffer is None or buffer.numel() < count:
            buffer = torch.empty(max(count, 1), dtype=torch.int32, pin_memory=self._pinned)
            self._buffers[self._turn] = buffer
        return buffer[:count]

    def copied(self) -> None:
        """Mark the copy just issued from the buffer `take` returned (on the current stream)."""
        if self._pinned:
            if self._events[self._turn] is None:
                self._events[self._turn] = torch.cuda.Event()  # type: ignore[no-untyped-call]
            self._events[self._turn].record()


def batch_rows(scheduler_output: Any, grammar_output: Any, input_batch: Any) -> tuple[list[int], list[int]]:
    """(bitmask rows, logits rows): vLLM's reordering, speculative positions included."""
    spec_tokens = scheduler_output.scheduled_spec_decode_tokens
    constrained = set(grammar_output.structured_output_request_ids)
    logit_rows: dict[str, int] = {}
    offset = 0
    for batch_index, request_id in enumerate(input_batch.req_ids):
        if request_id in constrained:
            logit_rows[request_id] = batch_index + offset
        offset += len(spec_tokens.get(request_id, ()))
    sources: list[int] = []
    targets: list[int] = []
    source = 0
    for request_id in grammar_output.structured_output_request_ids:
        positions = 1 + len(spec_tokens.get(request_id, ()))
        if (row := logit_rows.get(request_id)) is not None:
            sources.extend(range(source, source + positions))
            targets.extend(range(row, row + positions))
        source += positions
    return sources, targets


def apply(
    scheduler_output: Any,
    grammar_output: Any,
    input_batch: Any,
    logits: torch.Tensor,
    masks: Staging,
    rows: Staging,
) -> None:
    """Mask `logits` in place as vLLM's `apply_grammar_bitmask` does, staging through `masks`/`rows`."""
    bitmask: np.ndarray = grammar_output.grammar_bitmask
    sources, targets = batch_rows(scheduler_output, grammar_output, input_batch)
    if not targets:
        return
    words = bitmask.shape[1]
    host = masks.take(logits.shape[0] * words).view(logits.shape[0], words)
    every_row = len(targets) == logits.shape[0]
    host.numpy()[targets] = bitmask[sources]  # other rows are left out by `indices` (vLLM fills them)
    device_masks = host.to(logits.device, non_blocking=True)
    masks.copied()
    indices: Any = None
    if not every_row and logits.is_cpu:
        indices = targets  # xgrammar's CPU kernel takes a list
    elif not every_row:
        staged = rows.take(len(targets))
        staged.numpy()[:] = targets
        indices = staged.to(logits.device, non_blocking=True)
        rows.copied()
    xgr.apply_token_bitmask_inplace(logits, device_masks, indices=indices)


def install() -> bool:
    """Put our function in vLLM (its definition, and the runner's name if loaded). False: left alone."""
    utils = importlib.import_module(UTILS_MODULE)
    original = getattr(utils, "apply_grammar_bitmask", None)
    if original is None or list(inspect.signature(original).parameters) != _PARAMETERS:
        log.warning("vLLM's apply_grammar_bitmask is missing or has another signature: left as it is")
        return False
    if getattr(original, "_gptoss", False):
        ours = original
    else:
        ours = _wrapping(original)
        setattr(utils, "apply_grammar_bitmask", ours)  # noqa: B010 (a module's name)
    runner = sys.modules.get(RUNNER_MODULE)
    if runner is not None and getattr(runner, "apply_grammar_bitmask", None) is not ours:
        setattr(runner, "apply_grammar_bitmask", ours)  # noqa: B010
    if ours is not original:
        log.info("structured output: grammar bitmasks staged in reused pinned buffers")
    return True


def _wrapping(original: Any) -> Any:
    masks, rows = Staging(pinned=True), Staging(pinned=True)

    def apply_grammar_bitmask(
        scheduler_output: Any, grammar_output: Any, input_batch: Any, logits: Any
    ) -> None:
        if logits.is_cpu:
            return original(scheduler_output, grammar_output, input_batch, logits)  # type: ignore[no-any-return]
        apply(scheduler_output, grammar_output, input_batch, logits, masks, rows)
        return None

    apply_grammar_bitmask._gptoss = True  # type: ignore[attr-defined]
    return apply_grammar_bitmask


__all__ = ["Staging", "apply", "batch_rows", "install"]
