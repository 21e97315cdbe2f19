"""vLLM's structured output is configured for our tags, with a reasoning parser that needs no text
lookups (vLLM 0.26's gpt-oss parser looked `<|end|>` up and killed the engine on the marked
tokenizer)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from vllm.config import StructuredOutputsConfig
from vllm.reasoning import ReasoningParserManager
from vllm.v1.structured_output import StructuredOutputManager

from service import vllm_structured
from service.config import HARMONY_TINY_DIR
from service.engine_tokenizer import grammar_tokenizer


def test_configure_sets_the_backend_the_reasoning_span_and_our_parser() -> None:
    config = StructuredOutputsConfig()
    vllm_structured.configure(config)
    assert config.backend == "xgrammar" and config.enable_in_reasoning
    assert config.reasoning_parser == vllm_structured.NAME
    assert Path(config.reasoning_parser_plugin).read_text() == Path(vllm_structured.__file__).read_text()


def test_the_parser_loads_by_path_and_builds_on_the_grammar_tokenizer(tmp_path: Path) -> None:
    from vllm.tokenizers import get_tokenizer

    ReasoningParserManager.import_reasoning_parser(vllm_structured.__file__)  # as the engine process does
    parser_cls = ReasoningParserManager.get_reasoning_parser(vllm_structured.NAME)
    tokenizer = get_tokenizer(
        str(grammar_tokenizer(HARMONY_TINY_DIR, str(tmp_path), HARMONY_TINY_DIR / "config.json"))
    )
    parser = parser_cls(tokenizer)
    assert parser.is_reasoning_end([]) and parser.is_reasoning_end_streaming([], [])


class _Grammar:
    """A grammar that records which thread filled its row."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    def fill_bitmask(self, bitmask: torch.Tensor, index: int) -> None:
        self.threads.append(threading.current_thread().name)
        bitmask[index].fill_(index)

    def is_terminated(self) -> bool:
        return False


def _manager(max_num_seqs: int = 64) -> StructuredOutputManager:
    """vLLM's own manager on the config fields its __init__ and grammar_bitmask read."""
    config = SimpleNamespace(
        parallel_config=SimpleNamespace(distributed_executor_backend="mp"),
        scheduler_config=SimpleNamespace(max_num_seqs=max_num_seqs),
        model_config=SimpleNamespace(skip_tokenizer_init=True, is_diffusion=False),
        structured_outputs_config=SimpleNamespace(enable_in_reasoning=True),
        num_speculative_tokens=0,
    )
    manager = StructuredOutputManager(config)  # type: ignore[arg-type]
    manager.backend = SimpleNamespace(  # type: ignore[assignment]
        allocate_token_bitmask=lambda n: torch.zeros((n, 4), dtype=torch.int32), destroy=lambda: None
    )
    return manager


def _fill(manager: StructuredOutputManager, count: int) -> tuple[list[str], list[int]]:
    grammars = {f"r{i}": _Grammar() for i in range(count)}
    requests = {
        key: SimpleNamespace(structured_output_request=SimpleNamespace(grammar=g))
        for key, g in grammars.items()
    }
    rows = manager.grammar_bitmask(requests, list(requests), {})  # type: ignore[arg-type]
    assert rows is not None
    return [name for g in grammars.values() for name in g.threads], [int(row[0]) for row in rows]


@pytest.fixture
def restore_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(StructuredOutputManager, "grammar_bitmask", StructuredOutputManager.grammar_bitmask)
    monkeypatch.delenv(vllm_structured.PARALLEL_FILL_ENV, raising=False)


@pytest.mark.usefixtures("restore_manager")
def test_the_parallel_fill_threshold_reaches_vllms_manager_and_its_thread_pool() -> None:
    manager = _manager(max_num_seqs=64)  # vLLM: threshold 128, so no fill pool at all
    assert manager.fill_bitmask_parallel_threshold == 128 and not hasattr(manager, "executor_for_fillmask")
    threads, rows = _fill(manager, 8)
    assert set(threads) == {threading.current_thread().name} and rows == list(range(8))
    assert vllm_structured.install_parallel_fill(4)
    threads, rows = _fill(manager, 8)  # 8 > 4: vLLM's parallel path, batches of 16, in our pool
    assert manager.fill_bitmask_parallel_threshold == 4 and manager.fill_bitmask_parallel_batch_size == 16
    assert all(name.startswith("gptoss-fillmask") for name in threads) and rows == list(range(8))
    threads, _ = _fill(manager, 4)  # not above the threshold: serial
    assert set(threads) == {threading.current_thread().name}
    manager.clear_backend()  # vLLM shuts the pool down (threshold < max_num_seqs)
    assert manager.executor_for_fillmask._shutdown


@pytest.mark.usefixtures("restore_manager")
def test_the_engine_process_installs_the_threshold_from_the_environment() -> None:
    vllm_structured.configure(StructuredOutputsConfig(), parallel_fill_above=2)
    assert os.environ[vllm_structured.PARALLEL_FILL_ENV] == "2"
    ReasoningParserManager.import_reasoning_parser(vllm_structured.__file__)  # as the engine process does
    manager = _manager(max_num_seqs=256)  # vLLM made its own pool: it is kept
    pool = manager.executor_for_fillmask
    _fill(manager, 3)
    assert manager.fill_bitmask_parallel_threshold == 2 and manager.executor_for_fillmask is pool
    vllm_structured.configure(StructuredOutputsConfig())
    assert vllm_structured.PARALLEL_FILL_ENV not in os.environ
    manager.clear_backend()


def test_a_manager_without_the_threshold_is_left_alone(caplog: pytest.LogCaptureFixture) -> None:
    manager = SimpleNamespace()
    assert not vllm_structured.apply_parallel_fill(manager, 4)
    assert vars(manager) == {} and "fill_bitmask_parallel_threshold" in caplog.text
    assert not vllm_structured.install_parallel_fill(4, manager_cls=SimpleNamespace)
