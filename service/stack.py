"""`python -m service.stack`: the gRPC service and the REST gateway in front of it, supervised.

The one launcher of the two: `make run` calls it with flags, the container entrypoint
(deploy/docker/gptoss-stack) execs it with GPTOSS_* / GPTOSS_GATEWAY_* env. A flag wins over the
variable of the same setting and is handed to the child as that variable, so the service and the
gateway read every setting the one way they always do (flags > env > settings file > profile).

Both start at once: the gateway answers 503 (engine_starting) until the service is ready, so
clients and load balancers see a clear state while the engine loads. One line says when the
stack is ready, with the URL. Stop order and exit status: see service/supervisor.py.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from service import first_answer
from service.probes import connect_host, grpc_serving, http_ok
from service.supervisor import ChildSpec, Supervisor, say

# The defaults of service.config.Settings and gateway's GatewaySettings, read here without
# importing either (the gateway package pulls FastAPI; this process only supervises).
DEFAULT_HOST = "127.0.0.1"
DEFAULT_GRPC_PORT = 50051
DEFAULT_HTTP_PORT = 8000


@dataclass(frozen=True)
class StackConfig:
    service_host: str
    grpc_port: int
    gateway_host: str
    http_port: int
    gateway: bool
    stop_timeout: float
    first_answer: bool
    child_env: dict[str, str]  # what the children get on top of the supervisor's environment
    service_args: tuple[str, ...] = ()  # flags handed to `python -m service` as they are

    @property
    def grpc_target(self) -> str:
        return f"{connect_host(self.service_host)}:{self.grpc_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://{connect_host(self.gateway_host)}:{self.http_port}"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m service.stack", description=__doc__.splitlines()[0], allow_abbrev=False
    )
    parser.add_argument("--profile", help="service settings profile (GPTOSS_PROFILE)")
    parser.add_argument(
        "--host", help="listen address of both (GPTOSS_HOST, GPTOSS_GATEWAY_HOST; default 127.0.0.1)"
    )
    parser.add_argument("--grpc-port", type=int, help="service port (GPTOSS_PORT; default 50051)")
    parser.add_argument("--http-port", type=int, help="gateway port (GPTOSS_GATEWAY_PORT; default 8000)")
    parser.add_argument("--no-gateway", action="store_true", help="the gRPC service alone")
    parser.add_argument(
        "--first-answer",
        action="store_true",
        help='once ready, ask the gateway "Hi" and print the answer (make run does; a quick check)',
    )
    parser.add_argument(
        "--stop-timeout",
        type=float,
        default=float(os.environ.get("GPTOSS_STACK_STOP_TIMEOUT", "150")),
        help="seconds each child may take to stop before it is killed (GPTOSS_STACK_STOP_TIMEOUT)",
    )
    args, service_args = parser.parse_known_args(argv)
    args.service_args = service_args  # every other flag is the service's (`make run ARGS=...`)
    return args


def resolve(args: argparse.Namespace, environ: Mapping[str, str]) -> StackConfig:
    """The effective addresses (flag, else env, else default) and the env the children get."""
    child_env: dict[str, str] = {}
    if args.profile:
        child_env["GPTOSS_PROFILE"] = args.profile
    if args.host:
        child_env["GPTOSS_HOST"] = child_env["GPTOSS_GATEWAY_HOST"] = args.host
    if args.grpc_port is not None:
        child_env["GPTOSS_PORT"] = str(args.grpc_port)
    if args.http_port is not None:
        child_env["GPTOSS_GATEWAY_PORT"] = str(args.http_port)
    merged = {**environ, **child_env}
    service_host = merged.get("GPTOSS_HOST", DEFAULT_HOST)
    grpc_port = int(merged.get("GPTOSS_PORT", DEFAULT_GRPC_PORT))
    if "GPTOSS_GATEWAY_BACKENDS" not in environ:
        child_env["GPTOSS_GATEWAY_BACKENDS"] = f"{connect_host(service_host)}:{grpc_port}"
    config = StackConfig(
        service_host=service_host,
        grpc_port=grpc_port,
        gateway_host=merged.get("GPTOSS_GATEWAY_HOST", DEFAULT_HOST),
        http_port=int(merged.get("GPTOSS_GATEWAY_PORT", DEFAULT_HTTP_PORT)),
        gateway=not args.no_gateway,
        stop_timeout=args.stop_timeout,
        first_answer=bool(args.first_answer),
        child_env=child_env,
        service_args=tuple(getattr(args, "service_args", ())),
    )
    return config


def supervisor(config: StackConfig, python: str = sys.executable) -> Supervisor:
    """The service first in the stop order: it drains while the gateway relays its last streams."""
    children = [ChildSpec("service", [python, "-m", "service", *config.service_args], config.child_env)]
    target = config.grpc_target
    if not config.gateway:
        tls = "GPTOSS_TLS_CERT" in os.environ  # the probe speaks plaintext: no ready line under TLS
        return Supervisor(
            children,
            ready=None if tls else lambda: grpc_serving(target, timeout=1.0),
            ready_message=f"ready: gRPC service at {target}",
            stop_timeout=config.stop_timeout,
        )
    children.append(ChildSpec("gateway", [python, "-m", "gateway"], config.child_env))
    url = config.gateway_url
    return Supervisor(
        children,
        stop_order=["service", "gateway"],
        ready=lambda: http_ok(url + "/ready", timeout=1.0),
        ready_message=f"ready: OpenAI API at {url}/v1 (gRPC at {target})",
        stop_timeout=config.stop_timeout,
        on_ready=(lambda: say(first_answer.describe(url))) if config.first_answer else None,
    )


def main(argv: Sequence[str] | None = None) -> int:
    config = resolve(parse_args(argv), os.environ)
    say(f"gRPC service starting on {config.grpc_target} (engine start takes ~45 s on CPU)")
    if config.gateway:
        say(f"REST gateway on {config.gateway_url}: 503 engine_starting until the engine is ready")
    return supervisor(config).run()


if __name__ == "__main__":
    sys.exit(main())
