"""Our bitmask application masks the logits exactly as vLLM's `apply_grammar_bitmask`, from
reused buffers (the GPU's per-step pinned allocation was 30% of the engine loop at 64 streams)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest
import torch
from vllm.v1.structured_output.utils import apply_grammar_bitmask

from service import vllm_grammar_apply
from service.vllm_grammar_apply import Staging

ROOT = Path(__file__).resolve().parents[2]
VOCAB = 300
WORDS = (VOCAB + 31) // 32


def _case(batch: list[str], constrained: list[str], spec: dict[str, list[int]], seed: int) -> tuple:
    generator = np.random.default_rng(seed)
    rows = sum(1 + len(spec.get(r, ())) for r in constrained)
    bitmask = generator.integers(-(2**31), 2**31 - 1, size=(rows, WORDS), dtype=np.int64).astype(np.int32)
    logits_rows = sum(1 + len(spec.get(r, ())) for r in batch)
    logits = torch.from_numpy(generator.standard_normal((logits_rows, VOCAB)).astype(np.float32))
    scheduler_output = SimpleNamespace(scheduled_spec_decode_tokens=spec)
    grammar_output = SimpleNamespace(structured_output_request_ids=constrained, grammar_bitmask=bitmask)
    return scheduler_output, grammar_output, SimpleNamespace(req_ids=batch), logits


CASES = [
    (["a", "b", "c", "d"], ["d", "b"], {}),  # some rows, in another order
    (["a", "b", "c"], ["c", "a", "b"], {}),  # every row: no indices
    (["a", "b", "c"], ["c", "x", "a"], {"a": [5, 6], "c": [1]}),  # speculative rows; "x" not in the batch
]


@pytest.mark.parametrize(("batch", "constrained", "spec"), CASES)
def test_the_logits_are_masked_as_vllm_masks_them(
    batch: list[str], constrained: list[str], spec: dict[str, list[int]]
) -> None:
    masks, rows = Staging(pinned=False), Staging(pinned=False)
    for seed in range(3):  # buffers reused from step to step: no stale row survives
        scheduler_output, grammar_output, input_batch, logits = _case(batch, constrained, spec, seed)
        expected = logits.clone()
        apply_grammar_bitmask(scheduler_output, grammar_output, input_batch, expected)  # type: ignore[arg-type]
        vllm_grammar_apply.apply(scheduler_output, grammar_output, input_batch, logits, masks, rows)
        assert torch.equal(logits, expected)
        assert torch.isinf(logits).any()


def test_staging_reuses_two_buffers_in_turn() -> None:
    staging = Staging(pinned=False)
    first, second, third = staging.take(8), staging.take(8), staging.take(4)
    assert first.data_ptr() != second.data_ptr() and third.data_ptr() == first.data_ptr()
    assert staging.take(64).numel() == 64  # grown when a larger batch comes


@pytest.fixture
def vllm_utils(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """vLLM's module that defines apply_grammar_bitmask, with vLLM's function restored afterwards."""
    utils = importlib.import_module(vllm_grammar_apply.UTILS_MODULE)
    monkeypatch.setattr(utils, "apply_grammar_bitmask", apply_grammar_bitmask)
    return utils


def test_install_before_the_runner_is_loaded_goes_where_vllm_defines_the_function(
    vllm_utils: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, vllm_grammar_apply.RUNNER_MODULE, raising=False)
    assert vllm_grammar_apply.install() and vllm_grammar_apply.install()  # once
    ours = vllm_utils.apply_grammar_bitmask
    assert ours is not apply_grammar_bitmask and ours._gptoss
    assert vllm_grammar_apply.install() and vllm_utils.apply_grammar_bitmask is ours  # not wrapped twice
    scheduler_output, grammar_output, input_batch, logits = _case(["a", "b"], ["b"], {}, 0)
    expected = logits.clone()
    apply_grammar_bitmask(scheduler_output, grammar_output, input_batch, expected)  # type: ignore[arg-type]
    ours(scheduler_output, grammar_output, input_batch, logits)  # CPU logits: vLLM's own path
    assert torch.equal(logits, expected)


def test_install_after_the_runner_is_loaded_replaces_the_name_it_imported(
    vllm_utils: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = SimpleNamespace(apply_grammar_bitmask=apply_grammar_bitmask)
    monkeypatch.setitem(sys.modules, vllm_grammar_apply.RUNNER_MODULE, runner)
    assert vllm_grammar_apply.install()
    assert runner.apply_grammar_bitmask is vllm_utils.apply_grammar_bitmask is not apply_grammar_bitmask


def test_another_signature_is_left_alone(vllm_utils: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    def changed(scheduler_output: object, grammar_output: object, logits: object) -> None: ...

    monkeypatch.setattr(vllm_utils, "apply_grammar_bitmask", changed)
    runner = SimpleNamespace(apply_grammar_bitmask=changed)
    monkeypatch.setitem(sys.modules, vllm_grammar_apply.RUNNER_MODULE, runner)
    assert not vllm_grammar_apply.install()
    assert runner.apply_grammar_bitmask is changed and vllm_utils.apply_grammar_bitmask is changed


def test_a_gpu_workers_import_order_gets_ours() -> None:
    """A GPU worker imports the extension, then (setting up the device) the real runner module."""
    code = (
        "import service.vllm_worker_extension\n"
        "import vllm.v1.worker.gpu_model_runner as runner\n"
        "print(getattr(runner.apply_grammar_bitmask, '_gptoss', False))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "True", done.stderr[-2000:]


def test_the_engine_names_a_worker_extension_vllm_can_mix_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing the class vLLM is told to mix in installs ours (the runner loaded here first)."""
    from vllm.utils.import_utils import resolve_obj_by_qualname

    from service.config import Settings
    from service.engine import engine_kwargs

    qualname = engine_kwargs(Settings(profile="cpu-tiny"))["worker_extension_cls"]
    importlib.import_module(vllm_grammar_apply.UTILS_MODULE)
    monkeypatch.setattr(
        sys.modules[vllm_grammar_apply.UTILS_MODULE], "apply_grammar_bitmask", apply_grammar_bitmask
    )
    runner = SimpleNamespace(apply_grammar_bitmask=apply_grammar_bitmask)
    monkeypatch.setitem(sys.modules, vllm_grammar_apply.RUNNER_MODULE, runner)
    monkeypatch.delitem(sys.modules, "service.vllm_worker_extension", raising=False)
    extension = resolve_obj_by_qualname(qualname)  # as vLLM's worker does: the import installs
    assert runner.apply_grammar_bitmask is not apply_grammar_bitmask
    assert [name for name in vars(extension) if not name.startswith("__")] == []  # no clash with the worker
