"""Call the service with the raw generated stubs only (no wrapper): what any gRPC language does.

    python clients/examples/stub_call.py --target 127.0.0.1:50051 "Say hi"

Prints the model, streams the answer (reasoning on stderr), then usage and the finish reason.
"""

from __future__ import annotations

import argparse
import sys

import grpc
from gptoss.v1 import inference_pb2, inference_pb2_grpc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompt", nargs="?", default="Say hi in five words.")
    parser.add_argument("--target", default="127.0.0.1:50051")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--api-key", help="sent as 'authorization: Bearer KEY' when the server requires one")
    args = parser.parse_args()

    metadata = [("authorization", f"Bearer {args.api_key}")] if args.api_key else []
    with grpc.insecure_channel(args.target) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        info = stub.GetModelInfo(inference_pb2.GetModelInfoRequest(), timeout=10, metadata=metadata)
        print(f"model {info.model_id} (context {info.max_context_length})", file=sys.stderr)

        request = inference_pb2.GenerateRequest(
            messages=[inference_pb2.Message(role=inference_pb2.ROLE_USER, content=args.prompt)],
            reasoning_effort=inference_pb2.REASONING_EFFORT_LOW,
            max_tokens=args.max_tokens,
        )
        # Each GenerateResponse carries exactly one event in the `event` oneof.
        for response in stub.Generate(request, timeout=120, metadata=metadata):
            kind = response.WhichOneof("event")
            if kind == "reasoning":
                print(response.reasoning.text, end="", file=sys.stderr, flush=True)
            elif kind == "content":
                print(response.content.text, end="", flush=True)
            elif kind == "tool_call_done":
                call = response.tool_call_done
                print(f"\ntool call {call.name}({call.arguments})", file=sys.stderr)
            elif kind == "done":
                done = response.done
                print()
                print(
                    f"finish={inference_pb2.FinishReason.Name(done.finish_reason)} "
                    f"prompt_tokens={done.usage.prompt_tokens} completion_tokens={done.usage.completion_tokens} "
                    f"ttft={done.timings.time_to_first_token.ToTimedelta().total_seconds():.3f}s",
                    file=sys.stderr,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
