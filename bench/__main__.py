"""`python -m bench`: run the frontend sweep, or (re)build the report of a results folder.

python -m bench run --profile cpu-tiny                     # the CPU run: every frontend
python -m bench run --frontends engine --profile gpt-oss-120b-tp4 --set model=... --set load_format=dummy
python -m bench report bench/results/<run>                 # rows, report.md, plots from detail-*.json
python -m bench tokenizer MODEL_DIR OUT_DIR                # a gpt-oss tokenizer beside a config, offline
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path
from typing import Any

from bench import set_args

REPO_ROOT = Path(__file__).resolve().parent.parent  # not service.config: `tokenizer` needs no service deps
DEFAULT_RESULTS = REPO_ROOT / "bench" / "results"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="measure frontends over a concurrency sweep")
    run.add_argument("--frontends", nargs="+", default=["engine", "grpc", "gateway", "vllm-serve"])
    run.add_argument("--workloads", nargs="+", default=["tokens", "chat"], choices=["tokens", "chat"])
    run.add_argument("--profile", default="cpu-tiny", help="service settings profile (service/config.py)")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Settings field for every frontend, e.g. --set stream_interval=4 (repeatable)",
    )
    run.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8, 16])
    run.add_argument("--prompt-tokens", type=int, default=1000)
    run.add_argument("--output-tokens", type=int, default=256)
    run.add_argument("--repeats", type=int, default=1, help="measured runs per point (report: median)")
    run.add_argument("--waves", type=int, default=1, help="requests each stream sends back to back")
    run.add_argument("--warmup-tokens", type=int, default=16)
    run.add_argument(
        "--unique-prompts", action="store_true", help="a different prompt per request (no prefix cache)"
    )
    run.add_argument("--temperature", type=float, default=1.0)
    run.add_argument(
        "--prompt-text",
        default=None,
        help="a fixed user message instead of --prompt-tokens of filler (make bench: one harmony-tiny answers at length)",
    )
    run.add_argument(
        "--client-procs", type=int, default=None, help="load-generator processes (default: cores/8, 1..8)"
    )
    run.add_argument(
        "--max-minutes", type=float, default=30.0, help="whole-run budget; later points are skipped"
    )
    run.add_argument("--point-timeout", type=float, default=600.0)
    run.add_argument(
        "--start-timeout", type=float, default=900.0, help="seconds a server may take to get ready"
    )
    run.add_argument(
        "--machine", default="", help="machine label for the rows (default: detected, e.g. 4xH100)"
    )
    run.add_argument(
        "--out", type=Path, default=None, help="results folder (default bench/results/<machine>-<date>)"
    )
    run.add_argument(
        "--log-dir", type=Path, default=None, help="server logs and py-spy output (default .tmp/bench-logs)"
    )
    run.add_argument("--grpc-target", help="use a running service (host:port) instead of starting one")
    run.add_argument("--gateway-url", help="use a running gateway (http://host:port)")
    run.add_argument("--vllm-url", help="use a running `vllm serve` (http://host:port)")
    run.add_argument("--service-pidfile", type=Path, help="pidfile of a service started by `bench serve`")
    run.add_argument("--vllm-pidfile", type=Path, help="pidfile of a `vllm serve` started by `bench serve`")
    run.add_argument(
        "--pyspy",
        action="store_true",
        help="after each of our sweeps, one py-spy-sampled point at the top concurrency",
    )
    run.add_argument(
        "--interleave",
        action="store_true",
        help="per concurrency and repeat, one point of each workload in turn (drift hits all alike)",
    )
    run.add_argument(
        "--cold-burst",
        type=int,
        default=0,
        metavar="N",
        help="first, before any warm-up, one measured point of N streams on the fresh server",
    )
    run.add_argument("--cold-tokens", type=int, default=128, help="output tokens of the cold burst")
    run.add_argument(
        "--no-tokenizer", action="store_true", help="do not build a tokenizer beside a local model config"
    )
    run.add_argument(
        "--shaped-output",
        action="store_true",
        help="load bench.shaped_output into every engine: Harmony-shaped output of exactly max_tokens",
    )
    run.add_argument("--no-report", action="store_true")

    report = sub.add_parser("report", help="rows, report.md and plots from a results folder")
    report.add_argument("folder", type=Path)
    report.add_argument("--no-plots", action="store_true")

    serve = sub.add_parser(
        "serve", help="start our service or `vllm serve` detached (setsid), wait until ready"
    )
    serve.add_argument("server", choices=["service", "vllm-serve"])
    serve.add_argument("--profile", default="cpu-tiny")
    serve.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--log", type=Path, required=True)
    serve.add_argument("--pidfile", type=Path, required=True)
    serve.add_argument("--shaped-output", action="store_true", help="as for `run`")
    serve.add_argument(
        "--wait", type=float, default=900.0, help="seconds to wait for readiness (0: do not wait)"
    )

    stop = sub.add_parser("stop", help="stop a server started by `serve` (its whole process group)")
    stop.add_argument("--pidfile", type=Path, required=True)

    tok = sub.add_parser("tokenizer", help="copy a model config and build a gpt-oss tokenizer beside it")
    tok.add_argument("model_dir")
    tok.add_argument("cache", type=Path)
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """`--set` values, plus the shaping logits processor with `--shaped-output`."""
    overrides = set_args.overrides(args.set)
    if args.shaped_output:
        from bench.shaped_output import FQCN

        overrides["logits_processors"] = [FQCN]
    return overrides


def _serve(args: argparse.Namespace) -> int:
    """A server that outlives this command (the GPU machine keeps it between calls), pid in a file."""
    from bench import servers
    from service.config import Settings

    overrides = _overrides(args)
    if args.server == "service":
        server = servers.start_service(args.profile, overrides, args.port, args.log)
    else:
        settings = Settings(profile=args.profile, **overrides)
        server = servers.start_vllm_serve(settings, args.port, args.log)
    launched = time.time()
    args.pidfile.write_text(f"{server.pid} {launched:.3f}\n")
    print(f"{args.server}: pid {server.pid}, log {args.log}", flush=True)
    if args.wait <= 0:
        return 0
    target = f"127.0.0.1:{args.port}"
    if args.server == "service":
        took = servers.wait_grpc_ready(server, target, args.wait)
    else:
        took = servers.wait_http_ready(server, f"http://{target}/health", args.wait)
    args.pidfile.write_text(f"{server.pid} {launched:.3f} {time.time():.3f}\n")
    print(f"{args.server}: ready after {took:.0f}s", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "report":
        from bench.report import write_report

        print(write_report(args.folder, plots=not args.no_plots))
        return 0
    if args.command == "serve":
        return _serve(args)
    if args.command == "stop":
        from bench.servers import is_server, stop_group

        pid = int(args.pidfile.read_text().split()[0])
        if not is_server(pid):
            print(f"pid {pid} is not running one of our servers: nothing to stop", flush=True)
            return 0
        stop_group(pid)
        print(f"stopped process group {pid}", flush=True)
        return 0
    if args.command == "tokenizer":
        from bench.tokenizer import model_dir_with_tokenizer

        print(model_dir_with_tokenizer(args.model_dir, args.cache))
        return 0

    from bench.loadgen import default_processes
    from bench.run_config import RunConfig, detect_machine
    from bench.runner import run_all

    overrides = _overrides(args)
    machine = args.machine or detect_machine()
    date = datetime.datetime.now(datetime.UTC).date().isoformat()
    out = args.out or DEFAULT_RESULTS / f"{machine}-{date}"
    config = RunConfig(
        frontends=args.frontends,
        workloads=args.workloads,
        profile=args.profile,
        overrides=overrides,
        concurrency=args.concurrency,
        prompt_tokens=args.prompt_tokens,
        output_tokens=args.output_tokens,
        repeats=args.repeats,
        waves=args.waves,
        warmup_tokens=args.warmup_tokens,
        unique_prompts=args.unique_prompts,
        temperature=args.temperature,
        prompt_text=args.prompt_text,
        client_procs=args.client_procs or default_processes(),
        max_seconds=args.max_minutes * 60,
        point_timeout=args.point_timeout,
        start_timeout=args.start_timeout,
        machine=machine,
        out=out,
        log_dir=args.log_dir or REPO_ROOT / ".tmp" / "bench-logs" / out.name,
        grpc_target=args.grpc_target,
        gateway_url=args.gateway_url,
        vllm_url=args.vllm_url,
        pyspy=args.pyspy,
        interleave=args.interleave,
        cold_burst=args.cold_burst,
        cold_tokens=args.cold_tokens,
        service_pidfile=args.service_pidfile,
        vllm_pidfile=args.vllm_pidfile,
        argv=sys.argv[1:] if argv is None else argv,
    )
    if not args.no_tokenizer:
        # Every frontend loads the same folder: the model config with a gpt-oss tokenizer beside it
        # (`vllm serve` needs the tokenizer for chat; the same path keeps engine arguments identical).
        from bench.tokenizer import model_dir_with_tokenizer

        model = config.settings().model
        prepared = model_dir_with_tokenizer(model, REPO_ROOT / ".tmp" / "bench-models")
        if prepared != model:
            config.overrides["model"] = prepared
    run_all(config)
    if not args.no_report:
        from bench.report import write_report

        print(f"report: {write_report(config.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
