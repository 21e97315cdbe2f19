"""Every python / bash / shell block of README.md, docs/*.md and clients/python/README.md runs against the live stack
(real vLLM CPU engine, gRPC server, REST gateway) and exits 0, or is marked GPU-only / not-run
with a reason, which pytest reports as the skip reason."""

from __future__ import annotations

import re
import sys

import pytest

from tests.clients.e2e_support import clean_env, run
from tests.clients.test_e2e_readme import COMMANDS as BUF_CURL_COMMANDS
from tests.clients.test_e2e_readme import SECTION as BUF_CURL_SECTION
from tests.docs.snippets import REPO, Snippet, all_snippets
from tests.gateway.gateway_thread import GatewayThread
from tests.support.server_thread import ServerThread

SNIPPETS = all_snippets()
DEFAULT_ADDRESSES = ("127.0.0.1:8000", "127.0.0.1:9400", "127.0.0.1:50051")


def is_buf_curl_recipe(snippet: Snippet) -> bool:
    return snippet.doc.name == "README.md" and "## " + snippet.section == BUF_CURL_SECTION


def test_every_snippet_sets_a_token_limit() -> None:
    """A request without a limit runs to the whole context: 25 s of silence on a CPU."""
    for snippet in SNIPPETS:
        asks_for_tokens = re.search(
            r"chat\.completions\.create|responses\.create|/Generate|/chat/completions", snippet.code
        )
        if asks_for_tokens and snippet.marker is None:
            assert re.search(r"max_(completion_|output_)?tokens|maxTokens", snippet.code), snippet.id


def test_markers_give_a_reason() -> None:
    for snippet in SNIPPETS:
        if snippet.marker == "not-run":
            assert snippet.reason, f"{snippet.id}: not-run without a reason"


def test_the_default_addresses_are_what_the_snippets_use() -> None:
    """The substitution below is only honest while the snippets use the documented ports."""
    runnable = [s for s in SNIPPETS if s.marker is None and not is_buf_curl_recipe(s)]
    assert runnable
    for snippet in runnable:
        offline = snippet.code.lstrip().startswith("gptoss explain-error")  # decodes, needs no server
        assert offline or any(address in snippet.code for address in DEFAULT_ADDRESSES), snippet.id


def localized(code: str, server: ServerThread, gateway: GatewayThread) -> str:
    assert server.service is not None
    return (
        code.replace("127.0.0.1:8000", f"127.0.0.1:{gateway.port}")
        .replace("127.0.0.1:9400", f"127.0.0.1:{server.service.metrics_port}")
        .replace("127.0.0.1:50051", server.target)
    )


@pytest.mark.engine
@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.id for s in SNIPPETS])
def test_snippet_runs(snippet: Snippet, live_server: ServerThread, docs_gateway: GatewayThread) -> None:
    if snippet.marker == "gpu-only":
        pytest.skip(f"{snippet.id}: GPU-only" + (f": {snippet.reason}" if snippet.reason else ""))
    if snippet.marker == "not-run":
        pytest.skip(f"{snippet.id}: {snippet.reason}")
    if is_buf_curl_recipe(snippet):
        if snippet.language == "bash":  # run and checked against the typed client there
            assert snippet.code in BUF_CURL_COMMANDS
            return
        pytest.fail(f"{snippet.id}: a {snippet.language} block in the buf curl section needs a marker")
    code = localized(snippet.code, live_server, docs_gateway)
    if snippet.language == "python":
        argv = [sys.executable, "-c", code]
    else:
        argv = ["bash", "-euo", "pipefail", "-c", code]
    result = run(argv, env=clean_env(), timeout=180)
    print(f"--- {snippet.id} stdout:\n{result.stdout}\n--- stderr:\n{result.stderr}")
    assert result.returncode == 0, result.stderr
    if snippet.language == "python" and live_server.settings.load_format != "dummy":
        # A trained model (not random weights) answers: the snippet must show it.
        assert result.stdout.strip(), f"{snippet.id} printed nothing"


def test_readme_first_and_second_screens() -> None:
    """First screen: make run, what it prints, a streamed answer, make test, where the tools are.
    Second: Responses, plain curl, metrics on 9400, and one auth section with every variable."""
    readme = (REPO / "README.md").read_text()
    first, _, rest = readme.partition("## Calling it")
    second = rest.split("\n## ", 1)[0]
    for needle in (
        "make run\n",
        "make test\n",
        "```text",
        "stream=True",
        "source .venv/bin/activate",
        "make shell",
    ):
        assert needle in first, needle
    assert "GPTOSS_MODEL" in first and 'ARGS="' in first and "ENGINE=gpu" in first
    for needle in ("responses.create", "curl -sS", "127.0.0.1:9400/metrics", "### Authentication"):
        assert needle in second, needle
    auth = second.split("### Authentication", 1)[1]
    for variable in ("GPTOSS_API_KEYS", "GPTOSS_GATEWAY_API_KEYS", "GPTOSS_GATEWAY_BACKEND_API_KEY"):
        assert f"`{variable}`" in auth, variable
