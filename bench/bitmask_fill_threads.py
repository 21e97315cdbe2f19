"""Does xgrammar's `fill_next_token_bitmask` release the GIL? Serial fills against a thread pool.

vLLM's engine fills one bitmask per constrained request per step, serially unless the batch has more
than 128 of them (`fill_bitmask_parallel_threshold`); on the H200 that serial fill cost ~4 ms a step
at 64 streams. Threads can only help if the fill runs without the GIL: this times N matchers
(o200k_harmony, built offline; states inside a free JSON string, the costly case) filled serially,
then batched over a ThreadPoolExecutor as vLLM does (batches of 16), then in one call of xgrammar's
`BatchGrammarMatcher` (service/vllm_grammar_fill.py's way). H200 host, xgrammar 0.2.7, 8 threads
(bench/results/structured-1xH200-2026-12-03/fill-threads.jsonl): 64 fills 11.3 ms serial, 3.7 ms
in the pool (batches of 4), 3.2 ms in the batch matcher; 256: 43 / 9.5 / 8.7 ms.

    python -m bench.bitmask_fill_threads --matchers 64 --workers 2 4 8 [--batch 4] [--tokenizer DIR]
    python -m bench.bitmask_fill_threads --states tag --walk 80 ...     # the engine's own states

`--states probe` (the default) stops matchers inside plain JSON-schema grammars, a costly state: 218 µs
per fill on the 2-core CPU box. `--states tag` is what the engine fills in bench/structured_cost.py's
long-enforced arm: our structural tag (analysis capped at 64 tokens, then the one-string answer),
each matcher walked `--walk` tokens the way random weights decode (uniform over what the mask allows,
the string kept open). Those fills cost 16 µs each on the same box (64 matchers, walk 80). Cheap
fills leave little for threads to win against their per-call overhead.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import xgrammar as xgr
from transformers import AutoTokenizer

SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
ITEM = {"type": "object", "properties": {"name": {"type": "string"}, "qty": {"type": "integer"}}}
NESTED_SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string", "maxLength": 40}, "items": {"type": "array", "items": ITEM}},
    "required": ["title", "items"],
}
# Matcher states: mid-string in the long schema (free text) and in the nested one.
PREFIXES = [('{"text": "', SCHEMA), ('{"text": "A printer ', SCHEMA), ('{"title": "Pri', NESTED_SCHEMA)]


def _tokenizer(path: str | None) -> str:
    """The engine's 0xFF-marked o200k_harmony (built offline), or a HF dir (e.g. a copy carried)."""
    if path:
        return path
    from service.engine_tokenizer import grammar_tokenizer, offline_tokenizer

    cache = os.environ.get("GPTOSS_TOKENIZER_CACHE", os.path.join(tempfile.gettempdir(), "gptoss-tok"))
    return str(grammar_tokenizer(offline_tokenizer(cache), cache))


def _matchers(count: int, tokenizer: str) -> tuple[list[xgr.GrammarMatcher], int]:
    info = xgr.TokenizerInfo.from_huggingface(AutoTokenizer.from_pretrained(tokenizer))
    compiler = xgr.GrammarCompiler(info, max_threads=1)
    compiled = {id(s): compiler.compile_json_schema(json.dumps(s)) for _, s in PREFIXES}
    states = [PREFIXES[i % len(PREFIXES)] for i in range(count)]
    matchers = [xgr.GrammarMatcher(compiled[id(schema)]) for _, schema in states]
    assert all(matcher.accept_string(prefix) for matcher, (prefix, _) in zip(matchers, states, strict=True))
    return matchers, info.vocab_size


def _tag_matchers(
    count: int, tokenizer: str, walk: int, seed: int = 0
) -> tuple[list[xgr.GrammarMatcher], int]:
    """Matchers of the long-enforced arm's structural tag, each `walk` random-weights tokens in."""
    import numpy as np

    from service.structured_output import ResponseFormatSpec, constraint_for

    hf = AutoTokenizer.from_pretrained(tokenizer)
    info = xgr.TokenizerInfo.from_huggingface(hf)
    spec = ResponseFormatSpec(kind="json_schema", name="note", schema=SCHEMA)
    constraint = constraint_for(spec, [], "auto", [])
    assert constraint is not None  # an enforced schema always constrains
    compiled = xgr.GrammarCompiler(info, max_threads=1).compile_structural_tag(
        constraint.structural_tag(True, 64)
    )
    rng = np.random.default_rng(seed)
    scratch = xgr.allocate_token_bitmask(1, info.vocab_size)
    first_special = min(hf.all_special_ids or [info.vocab_size])
    matchers = []
    for _ in range(count):
        matcher = xgr.GrammarMatcher(compiled)
        for _ in range(walk):
            matcher.fill_next_token_bitmask(scratch, 0)
            bits = np.unpackbits(scratch[0].numpy().view(np.uint8), bitorder="little")[: info.vocab_size]
            allowed = np.flatnonzero(bits)
            text = allowed[allowed < first_special]
            token = int(allowed[0]) if len(text) == 0 else int(rng.choice(text))
            for _ in range(50 if len(text) else 0):  # keep the string open: no quote, no backslash
                if not set(hf.decode([token])) & {'"', "\\"}:
                    break
                token = int(rng.choice(text))
            assert matcher.accept_token(token) and not matcher.is_terminated()
        matchers.append(matcher)
    return matchers, info.vocab_size


def _fill(matchers: list[xgr.GrammarMatcher], bitmask: Any, start: int = 0) -> None:
    for offset, matcher in enumerate(matchers):
        matcher.fill_next_token_bitmask(bitmask, start + offset)


def _pooled(pool: ThreadPoolExecutor, matchers: list[xgr.GrammarMatcher], bitmask: Any, batch: int) -> None:
    starts = range(0, len(matchers), batch)
    for future in [pool.submit(_fill, matchers[i : i + batch], bitmask, i) for i in starts]:
        future.result()


def _batched(batcher: Any, matchers: list[xgr.GrammarMatcher], bitmask: Any) -> None:
    batcher.batch_fill_next_token_bitmask(matchers, bitmask)


def _time(step: Callable[..., None], rounds: int, *args: Any) -> float:
    step(*args)  # warm (xgrammar caches per state)
    started = time.perf_counter()
    for _ in range(rounds):
        step(*args)
    return (time.perf_counter() - started) / rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--matchers", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    parser.add_argument("--batch", type=int, default=16, help="matchers per task (vLLM: 16)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--tokenizer", help="a HF tokenizer dir (default: build o200k_harmony)")
    parser.add_argument(
        "--states", choices=["probe", "tag"], default="probe", help="see the module's docstring"
    )
    parser.add_argument("--walk", type=int, default=80, help="--states tag: tokens each matcher has decoded")
    args = parser.parse_args()
    tokenizer = _tokenizer(args.tokenizer)
    if args.states == "tag":
        matchers, vocab = _tag_matchers(args.matchers, tokenizer, args.walk)
    else:
        matchers, vocab = _matchers(args.matchers, tokenizer)
    bitmask = xgr.allocate_token_bitmask(len(matchers), vocab)
    serial = _time(_fill, args.rounds, matchers, bitmask)
    result: dict[str, Any] = {"states": args.states, "matchers": len(matchers), "cpus": os.cpu_count()}
    result["serial_ms"] = serial * 1e3
    result["per_fill_us"] = round(serial / len(matchers) * 1e6, 1)
    for workers in args.workers:
        with ThreadPoolExecutor(workers) as pool:
            threaded = _time(_pooled, args.rounds, pool, matchers, bitmask, args.batch)
        result[f"threads_{workers}_ms"] = threaded * 1e3
        result[f"speedup_{workers}"] = round(serial / threaded, 2)
        if hasattr(xgr, "BatchGrammarMatcher"):  # one native call, xgrammar's own threads
            native = _time(_batched, args.rounds, xgr.BatchGrammarMatcher(workers), matchers, bitmask)
            result[f"batch_matcher_{workers}_ms"] = native * 1e3
            result[f"batch_speedup_{workers}"] = round(serial / native, 2)
    print(json.dumps({key: round(v, 3) if isinstance(v, float) else v for key, v in result.items()}))


if __name__ == "__main__":
    main()
