"""Build the harmony-tiny checkpoint once: `python models/harmony-tiny/build.py [--force]`.

Writes model.safetensors + config.json + the offline gpt-oss tokenizer into `build/` beside this
file (gitignored), then a `recipe.sha256` stamp: the hash of everything the weights depend on
(these scripts, the data, the base config, the service's Harmony renderer). A later call with the
same hash does nothing, so `make` and the test session can both call `ensure_model()` cheaply.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
BUILD_DIR = HERE / "build"
TINY_CONFIG = REPO_ROOT / "models" / "tiny-gpt-oss" / "config.json"
STAMP = "recipe.sha256"
RECIPE = (
    HERE / "build.py",
    HERE / "harmony_tiny_train.py",
    HERE / "harmony_tiny_data.py",
    REPO_ROOT / "service" / "harmony" / "tokenizer_files.py",
    TINY_CONFIG,
    REPO_ROOT / "service" / "harmony" / "render.py",
)


def recipe_hash() -> str:
    digest = hashlib.sha256()
    for path in RECIPE:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def is_current(out: Path = BUILD_DIR) -> bool:
    stamp = out / STAMP
    return stamp.is_file() and stamp.read_text().strip() == recipe_hash()


def ensure_model(out: Path = BUILD_DIR, *, force: bool = False, log: bool = True) -> Path:
    """The built model directory; trains (minutes on a busy 2-core box) only when the recipe changed."""
    if not force and is_current(out):
        return out
    for path in (str(HERE), str(REPO_ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))  # fixed: the same float sums every run
    from harmony_tiny_train import check_exact, sequences, train
    from transformers import GptOssForCausalLM

    from service.harmony.tokenizer_files import build_tokenizer

    started, recipe = time.monotonic(), recipe_hash()  # the recipe this build is made from
    seqs = sequences()
    trained = train(seqs, TINY_CONFIG, progress=(lambda line: print(line, flush=True)) if log else None)
    trained_at = time.monotonic()
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    config_data = json.loads(TINY_CONFIG.read_text())
    config_data["dtype"] = "float32"
    (staging / "config.json").write_text(json.dumps(config_data, indent=2) + "\n")
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(staging))
    config._attn_implementation = "eager"
    model = GptOssForCausalLM(config).to(torch.float32)
    model.load_state_dict(trained.state, strict=True)
    model.save_pretrained(str(staging))
    (staging / "config.json").write_text(json.dumps(config_data, indent=2) + "\n")  # exactly ours
    reloaded = GptOssForCausalLM.from_pretrained(
        str(staging), attn_implementation="eager", dtype=torch.float32
    )
    least = check_exact(reloaded, seqs)
    build_tokenizer(staging)
    report = {
        "examples": len(seqs),
        "subset_vocab": len(trained.vocab),
        "steps": trained.steps,
        "train_margin": round(trained.margin, 3),
        "router_gap": round(trained.router_gap, 4),
        "full_model_margin": round(least, 3),
        "train_seconds": round(trained_at - started, 1),
        "total_seconds": round(time.monotonic() - started, 1),
        "torch_threads": torch.get_num_threads(),
    }
    (staging / "training_report.json").write_text(json.dumps(report, indent=2) + "\n")
    (staging / STAMP).write_text(recipe + "\n")
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    if log:
        print(f"harmony-tiny built in {out}: {json.dumps(report)}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=BUILD_DIR)
    parser.add_argument("--force", action="store_true", help="train even if the recipe hash matches")
    args = parser.parse_args()
    out = ensure_model(args.out, force=args.force)
    print(f"harmony-tiny ready: {out}")


if __name__ == "__main__":
    main()
