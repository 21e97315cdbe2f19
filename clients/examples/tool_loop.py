"""A tool-calling loop with the gptoss client: the model asks, we run a local function, send back the result.

    python clients/examples/tool_loop.py --target 127.0.0.1:50051 "What's the weather in Paris?"

Each round: complete() the conversation; if the turn ended in tool calls, append the assistant turn
(with its tool_calls) and one `tool` message per call (carrying tool_call_id), then ask again.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from gptoss import Client, FinishReason, GptossError

TOOLS = [
    {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name, e.g. Paris"}},
            "required": ["city"],
        },
    }
]


def get_weather(city: str) -> dict[str, Any]:
    """A stand-in for a real API call: deterministic, local."""
    return {"city": city, "temperature_c": 21, "sky": "clear"}


LOCAL_FUNCTIONS: dict[str, Callable[..., Any]] = {"get_weather": get_weather}


def run_tool(name: str, arguments: str) -> str:
    """Run one call; errors go back to the model as data rather than crashing the loop."""
    function = LOCAL_FUNCTIONS.get(name)
    if function is None:
        return json.dumps({"error": f"unknown tool {name!r}"})
    try:
        kwargs = json.loads(arguments) if arguments.strip() else {}
        return json.dumps(function(**kwargs))
    except (ValueError, TypeError) as exc:
        return json.dumps({"error": f"bad arguments for {name}: {exc}"})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompt", nargs="?", default="What's the weather in Paris?")
    parser.add_argument("--target", default="127.0.0.1:50051")
    parser.add_argument("--api-key")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--max-rounds", type=int, default=4)
    args = parser.parse_args()

    messages: list[dict[str, Any]] = [{"role": "user", "content": args.prompt}]
    with Client(args.target, api_key=args.api_key, timeout=120) as client:
        for round_no in range(1, args.max_rounds + 1):
            try:
                result = client.complete(
                    messages=messages, tools=TOOLS, reasoning_effort="low", max_tokens=args.max_tokens
                )
            except GptossError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            print(f"round {round_no}: finish={result.finish_reason.value}", file=sys.stderr)
            if result.finish_reason is not FinishReason.TOOL_CALLS or not result.tool_calls:
                print(result.content)
                return 0
            messages.append(result.as_assistant_message())
            for call in result.tool_calls:
                output = run_tool(call.name, call.arguments)
                print(f"tool {call.name}({call.arguments}) -> {output}", file=sys.stderr)
                messages.append(
                    {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": output}
                )
    print(f"gave up after {args.max_rounds} rounds of tool calls", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
