"""The points of one frontend group, saved to `detail-<group>.json` after every point, so whatever
was measured survives a timeout; `bench report` builds rows and the report from these files."""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any

from bench import procstat
from bench.run_config import RunConfig, engine_version
from service.engine import engine_kwargs


class Recorder:
    """Points of one frontend group, rewritten to `detail-<group>.json` after each point."""

    def __init__(self, config: RunConfig, group: str) -> None:
        settings = config.settings()
        self.path = config.out / f"detail-{group}.json"
        self.data: dict[str, Any] = {
            "meta": {
                "machine": config.machine,
                "engine": f"{engine_version()} {settings.model_id} tp{settings.tensor_parallel_size}",
                "date": datetime.datetime.now(datetime.UTC).date().isoformat(),
                "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "group": group,
                "profile": config.profile,
                "engine_args": {k: v for k, v in engine_kwargs(settings).items() if k != "model"}
                | {"model": Path(settings.model).name},
                "workload": {
                    "prompt_tokens": config.prompt_tokens,
                    "output_tokens": config.output_tokens,
                    "concurrency": config.concurrency,
                    "repeats": config.repeats,
                    "waves": config.waves,
                    "warmup_tokens": config.warmup_tokens,
                    "unique_prompts": config.unique_prompts,
                    "temperature": config.temperature,
                    "prompt_text": config.prompt_text,
                },
                "client_procs": config.client_procs,
                "cpus": os.cpu_count(),
                "load_average_start": procstat.load_average(),
                "argv": config.argv,
            },
            "points": [],
            "profiles": [],
            "servers": {},
            "notes": [],
        }
        config.out.mkdir(parents=True, exist_ok=True)

    def add(self, key: str, value: Any) -> None:
        self.data[key].append(value)
        self.save()

    def save(self) -> None:
        self.data["meta"]["load_average_end"] = procstat.load_average()
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)
