"""Loaded by vLLM into every process that runs the model (`worker_extension_cls`).

Importing this module is the point: it installs service/vllm_grammar_apply.py's bitmask
application in that process, whether the model runs in the engine core (one GPU) or in
tensor-parallel worker processes, before or after vLLM loads its GPU model runner there. The class
adds no method to vLLM's worker.
"""

from __future__ import annotations

from service import vllm_grammar_apply


class ModelProcessExtension:
    """Empty on purpose: vLLM mixes it into its worker class, and refuses names that clash."""


vllm_grammar_apply.install()
