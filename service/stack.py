"""`make run`: the gRPC service and, beside it, the REST gateway, as two supervised processes.

The gateway starts once the service is ready; SIGINT/SIGTERM drain the service, then stop the
gateway; if either exits, the other is stopped and the exit code is passed on.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

READINESS_SERVICE = "gptoss.v1.InferenceService"


def _ready(target: str) -> bool:
    try:
        with grpc.insecure_channel(target) as channel:
            request = health_pb2.HealthCheckRequest(service=READINESS_SERVICE)
            reply = health_pb2_grpc.HealthStub(channel).Check(request, timeout=2)
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
    except grpc.RpcError:
        return False


def _stop(process: subprocess.Popen[bytes], timeout: float) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default=None)
    parser.add_argument("--grpc-port", type=int, default=50051)
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--no-gateway", action="store_true")
    args = parser.parse_args()
    service_cmd = [sys.executable, "-m", "service", "--host", args.host, "--port", str(args.grpc_port)]
    if args.profile:
        service_cmd += ["--profile", args.profile]
    service = subprocess.Popen(service_cmd)
    processes = [service]
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    target = f"{args.host}:{args.grpc_port}"
    print(f"[stack] gRPC service starting on {target} (engine start takes ~45 s on CPU)", flush=True)
    while not stopping and service.poll() is None and not _ready(target):
        time.sleep(1)
    if not stopping and service.poll() is None and not args.no_gateway:
        gateway_cmd = [sys.executable, "-m", "gateway", "--host", args.host, "--port", str(args.http_port)]
        gateway_cmd += ["--backend", target]
        processes.append(subprocess.Popen(gateway_cmd, env=os.environ.copy()))
        print(f"[stack] REST gateway on http://{args.host}:{args.http_port}/v1 (OpenAI API)", flush=True)
    while not stopping and all(p.poll() is None for p in processes):
        time.sleep(0.5)
    # Service first: it drains (in-flight streams finish through the gateway), then the gateway goes.
    codes = [_stop(p, timeout=120) for p in processes]
    return next((code for code in codes if code not in (0, -signal.SIGTERM)), 0)


if __name__ == "__main__":
    sys.exit(main())
