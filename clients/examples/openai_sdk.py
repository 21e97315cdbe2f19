"""Use the official OpenAI Python SDK against the REST gateway (OpenAI-compatible /v1 API).

    pip install openai
    python clients/examples/openai_sdk.py --base-url http://127.0.0.1:8000/v1 "Say hi"

Shows /v1/models, a streamed chat completion (reasoning arrives as `reasoning_content` deltas,
the vLLM convention) and the same question through the Responses API.
"""

from __future__ import annotations

import argparse
import os
import sys

from openai import OpenAI


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompt", nargs="?", default="Say hi in five words.")
    parser.add_argument("--base-url", default=os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1"))
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()

    # The gateway checks the key only when it was started with API keys; the SDK insists on one.
    client = OpenAI(base_url=args.base_url, api_key=os.environ.get("OPENAI_API_KEY", "unused"))

    model = client.models.list().data[0].id
    print(f"model: {model}", file=sys.stderr)

    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": args.prompt}],
        max_tokens=args.max_tokens,
        reasoning_effort="low",
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if chunk.usage is not None:
            print(
                f"\nusage: {chunk.usage.prompt_tokens} prompt, {chunk.usage.completion_tokens} completion",
                file=sys.stderr,
            )
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        reasoning = getattr(delta, "reasoning_content", None)
        if reasoning:
            print(reasoning, end="", file=sys.stderr, flush=True)
        if delta.content:
            print(delta.content, end="", flush=True)
    print()

    response = client.responses.create(model=model, input=args.prompt, max_output_tokens=args.max_tokens)
    print(f"responses API: status={response.status} output_text={response.output_text!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
