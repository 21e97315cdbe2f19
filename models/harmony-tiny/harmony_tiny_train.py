"""Train the tiny gpt-oss to reproduce `harmony_tiny_data` exactly, cheaply and deterministically.

The speed trick: train a copy whose vocabulary is only the k token ids that occur, plus one input
row UNK (the embedding every other token gets) and one constant output column `log(V - k)`: what
the V - k other tokens contribute to the softmax when their `lm_head` rows are zero. The trained
rows are then scattered into full V-row matrices, which gives exactly the same logits. Training
stops once, under teacher forcing, every target logit beats every other logit by `MARGIN` (so
greedy decoding reproduces every reply). The router is fixed (zero weights, distinct biases), so
every token's 2nd and 3rd expert logits are `ROUTER_GAP` apart: near-tied router logits could
otherwise make vLLM and transformers pick different experts.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from harmony_tiny_data import EXAMPLES, Example, Say
from openai_harmony import Message, Role

from service.harmony import tokens as tk
from service.harmony.render import render_prompt

SEED = 1234
MARGIN = 2.0
# Fixed router: zero weights, these biases. Every token picks experts 0 and 1 with logits 1 apart,
# so no near-tie can make vLLM and transformers route a token differently.
ROUTER_BIAS = (1.5, 0.5, -0.5, -1.5)
ROUTER_GAP = 0.5
LEARNING_RATE = 3e-3
MAX_STEPS = 800
CHECK_EVERY = 10
FULL_VOCAB = 201088
BUCKET_TOKENS = 6000
NOISY_COPIES = 1  # per refusal example: user-message tokens partly replaced by UNK


@dataclass(frozen=True)
class Sequence:
    name: str
    prompt: list[int]
    completion: list[int]


def reply_tokens(reply: tuple[Say, ...]) -> list[int]:
    """The tokens the model must generate after the prompt's `<|start|>assistant`."""
    enc = tk.encoding()
    out: list[int] = []
    for say in reply:
        if say.header:
            head = [tk.START, *enc.encode("assistant", allowed_special="all")]
            head += enc.encode(say.header, allowed_special="all")
            rendered = [*head, tk.MESSAGE, *enc.encode(say.text), tk.END]
        else:
            message = Message.from_role_and_content(Role.ASSISTANT, say.text).with_channel(say.channel)
            if say.recipient:
                message = message.with_recipient(say.recipient).with_content_type("<|constrain|>json")
            rendered = list(enc.render(message))
        if say.recipient:
            rendered[-1] = tk.CALL if say.last_call else tk.END
        elif say.channel == "final":
            rendered[-1] = tk.RETURN
        out += rendered
    assert out[0] == tk.START and out[-1] in tk.ASSISTANT_STOP_TOKENS
    return out[2:]  # the prompt already ends with <|start|>assistant


def sequences(examples: tuple[Example, ...] = EXAMPLES) -> list[Sequence]:
    return [Sequence(e.name, render_prompt(e.request), reply_tokens(e.reply)) for e in examples]


def _user_span(prompt: list[int]) -> range:
    """Positions of the last user message's text (where unseen prompts differ)."""
    start = max(i for i in range(len(prompt) - 2) if prompt[i] == tk.START and prompt[i + 2] == tk.MESSAGE)
    end = prompt.index(tk.END, start)
    return range(start + 3, end)


@dataclass
class Batch:
    inputs: torch.Tensor  # (B, T) subset ids
    targets: torch.Tensor  # (B, T) subset id of the next token, -1 where not trained
    clean: torch.Tensor  # (B,) the row is a real example (not a noisy copy)
    real: torch.Tensor  # (B, T) the position holds a token (not padding)


def _rows(seqs: list[Sequence], index: dict[int, int], unk: int) -> list[tuple[list[int], int, bool]]:
    """(ids, prompt length, clean) per training row; refusals also get copies with UNK noise."""
    rng = random.Random(SEED)
    rows: list[tuple[list[int], int, bool]] = []
    for seq in seqs:
        ids = [index[t] for t in seq.prompt + seq.completion]
        rows.append((ids, len(seq.prompt), True))
        if seq.name.startswith("refusal"):
            span = _user_span(seq.prompt)
            for _ in range(NOISY_COPIES):
                noisy = [unk if i in span and rng.random() < 0.5 else t for i, t in enumerate(ids)]
                rows.append((noisy, len(seq.prompt), False))
    return sorted(rows, key=lambda row: len(row[0]))


def _batches(rows: list[tuple[list[int], int, bool]], budget: int = BUCKET_TOKENS) -> list[Batch]:
    """Rows of similar length together (little padding), each bucket at most `budget` tokens."""
    buckets: list[list[tuple[list[int], int, bool]]] = [[]]
    for row in rows:  # sorted by length: the last row of a bucket is its widest
        if buckets[-1] and len(row[0]) * (len(buckets[-1]) + 1) > budget:
            buckets.append([])
        buckets[-1].append(row)
    return [_batch(bucket) for bucket in buckets]


def _batch(rows: list[tuple[list[int], int, bool]]) -> Batch:
    width = max(len(ids) for ids, _, _ in rows)
    inputs = torch.zeros(len(rows), width, dtype=torch.long)
    targets = torch.full((len(rows), width), -1, dtype=torch.long)
    real = torch.zeros(len(rows), width, dtype=torch.bool)
    for r, (ids, prompt_len, _) in enumerate(rows):
        inputs[r, : len(ids)] = torch.tensor(ids)
        real[r, : len(ids)] = True
        # Noise only touches the prompt, so a noisy copy keeps the clean reply as its targets.
        targets[r, prompt_len - 1 : len(ids) - 1] = torch.tensor(ids[prompt_len:])
    return Batch(inputs, targets, torch.tensor([c for _, _, c in rows]), real)


def _subset_config(tiny_config: Path, vocab_size: int) -> Any:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(tiny_config.parent))
    config.vocab_size = vocab_size
    config.pad_token_id = None  # the subset has no pad row; pads are never trained on
    config._attn_implementation = "eager"
    config.dtype = "float32"
    return config


def _forward(model: Any, batch: Batch, k: int, full_vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Subset logits with the constant column appended, and every token's 2nd-3rd router logit gap."""
    captured: list[torch.Tensor] = []
    hooks = [
        layer.mlp.router.register_forward_hook(lambda _m, _i, out: captured.append(out[0]))
        for layer in model.model.layers
    ]
    try:
        hidden = model.model(input_ids=batch.inputs).last_hidden_state
    finally:
        for hook in hooks:
            hook.remove()
    logits = hidden @ model.lm_head.weight[:k].T
    rest = torch.full((*logits.shape[:2], 1), math.log(full_vocab - k))
    top = torch.stack(captured).topk(3, dim=-1).values  # (layers, B*T, 3)
    gaps = (top[..., 1] - top[..., 2])[:, batch.real.flatten()]
    return torch.cat([logits, rest], dim=-1), gaps


def _margins(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per trained position: target logit minus the best other (subset logits, and 0 for the rest)."""
    mask = targets >= 0
    flat, goal = logits[..., :-1][mask], targets[mask]
    best = flat.gather(1, goal[:, None]).squeeze(1)
    others = flat.scatter(1, goal[:, None], float("-inf")).max(dim=1).values.clamp(min=0.0)
    return best - others


@dataclass
class Trained:
    vocab: list[int]
    state: dict[str, torch.Tensor]  # full-vocabulary weights
    steps: int
    margin: float
    router_gap: float


def train(seqs: list[Sequence], tiny_config: Path, progress: Callable[[str], None] | None = None) -> Trained:
    from transformers import GptOssForCausalLM

    torch.manual_seed(SEED)
    vocab = sorted({t for s in seqs for t in s.prompt + s.completion})
    index = {t: i for i, t in enumerate(vocab)}
    k = len(vocab)
    full = FULL_VOCAB
    batches = _batches(_rows(seqs, index, k))
    model = GptOssForCausalLM(_subset_config(tiny_config, k + 1)).to(torch.float32)
    for layer in model.model.layers:
        with torch.no_grad():
            layer.mlp.router.weight.zero_()
            layer.mlp.router.bias.copy_(torch.tensor(ROUTER_BIAS))
        layer.mlp.router.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=LEARNING_RATE, betas=(0.9, 0.95), weight_decay=0.0)
    trained_tokens = sum(int((b.targets >= 0).sum()) for b in batches)
    step, margin, gap = 0, float("-inf"), float("-inf")
    while step < MAX_STEPS:
        check = step % CHECK_EVERY == 0
        margins, gaps_seen = [], []
        optimizer.zero_grad()
        for batch in batches:  # one full-batch step, accumulated bucket by bucket
            logits, gaps = _forward(model, batch, k, full)
            if check:
                with torch.no_grad():
                    if bool(batch.clean.any()):
                        margins.append(float(_margins(logits[batch.clean], batch.targets[batch.clean]).min()))
                    gaps_seen.append(float(gaps.min()))
            mask = batch.targets >= 0
            loss = torch.nn.functional.cross_entropy(logits[mask], batch.targets[mask], reduction="sum")
            (loss / trained_tokens).backward()
        if check:
            margin, gap = min(margins), min(gaps_seen)
            if progress is not None:
                progress(f"step {step}: margin {margin:.2f}, router gap {gap:.3f}")
            if margin >= MARGIN and gap >= ROUTER_GAP:
                break  # the weights that were just checked; this step's gradients are dropped
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        step += 1
    if margin < MARGIN or gap < ROUTER_GAP:
        raise RuntimeError(f"no exact fit after {step} steps: margin {margin:.2f}, router gap {gap:.3f}")
    return Trained(vocab, _full_state(model, vocab, full), step, margin, gap)


def _full_state(model: Any, vocab: list[int], full: int) -> dict[str, torch.Tensor]:
    state = {name: value.detach().clone() for name, value in model.state_dict().items()}
    ids = torch.tensor(vocab)
    embed, head = state["model.embed_tokens.weight"], state["lm_head.weight"]
    full_embed = embed[len(vocab)].expand(full, embed.shape[1]).clone()  # every other token: UNK
    full_embed[ids] = embed[: len(vocab)]
    full_head = torch.zeros(full, head.shape[1])
    full_head[ids] = head[: len(vocab)]
    state["model.embed_tokens.weight"], state["lm_head.weight"] = full_embed, full_head
    return state


def check_exact(model: Any, seqs: list[Sequence]) -> float:
    """Teacher forcing on the full model: every reply token is the argmax; returns the least margin."""
    least = float("inf")
    head = model.lm_head.weight
    with torch.no_grad():
        for seq in seqs:
            ids = torch.tensor([seq.prompt + seq.completion])
            hidden = model.model(input_ids=ids).last_hidden_state[0, len(seq.prompt) - 1 : -1]
            logits = hidden @ head.T
            goal = torch.tensor(seq.completion)
            best = logits.gather(1, goal[:, None]).squeeze(1)
            others = logits.scatter(1, goal[:, None], float("-inf")).max(dim=1).values
            least = min(least, float((best - others).min()))
            if least <= 0:
                raise RuntimeError(f"{seq.name}: the full model does not reproduce its reply")
    return least
