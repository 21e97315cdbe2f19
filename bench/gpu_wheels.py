"""Carry folders for the GPU machines: the kit's vLLM 0.26 chunks plus what our side needs, re-split.

    python3 ../shared/gpu/fetch_wheels.py .whl --serving     # the kit: .whl/1, .whl/2, .whl/3
    python bench/gpu_wheels.py                               # -> .whl/b1 .. .whl/b4

Adds (py3.12 wheels, downloaded with pip): grpcio >= 1.85.1 (the generated stubs refuse the image's
1.84), grpcio-health-checking / -reflection / -status, googleapis-common-protos, py-spy, and
mistral_common + pycountry (vLLM 0.26's chat path imports them; the kit lacks them), and the
gateway's store (SQLAlchemy, aiosqlite, alembic and their greenlet, Mako, MarkupSafe: the gateway
imports them even with the store off). The three big
folders are balanced to fit one call each with the working tree (64 MiB); the last one is small
and holds `LAST`, so `device_install.sh` installs everything in the call that carries it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

EXTRAS = [
    "grpcio==1.85.3",
    "grpcio-health-checking==1.85.1",
    "grpcio-reflection==1.85.1",
    "grpcio-status==1.85.3",
    "googleapis-common-protos==1.76.0",
    "py-spy==0.4.3",
]
LATE = [
    "mistral_common==1.13.1",
    "pycountry==26.2.16",
    "SQLAlchemy==2.0.54",
    "aiosqlite==0.22.1",
    "alembic==1.20.0",
    "greenlet==3.2.5",
    "Mako==1.4.3",
    "MarkupSafe==3.0.4",
]
PLATFORM = ["--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp"]
for _tag in (
    "manylinux_2_28_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
    "any",
):
    PLATFORM += ["--platform", _tag]


def download(names: list[str], dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(dest), *PLATFORM, *names]
    subprocess.run(cmd, check=True)
    return sorted(dest.glob("*.whl"))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kit", type=Path, default=Path(".whl"), help="folder with the kit's chunks 1..3")
    args = parser.parse_args()
    kit: Path = args.kit
    (last_chunk,) = [p for p in kit.glob("*/LAST") if p.parent.name.isdigit()]
    _, wheel = last_chunk.read_text().split()
    parts = sorted(kit.glob(f"[0-9]*/{wheel}.part*"), key=lambda p: p.name)
    blob = b"".join(part.read_bytes() for part in parts)
    small = sorted((kit / "1").glob("*.whl"))
    extras = download(EXTRAS, kit / "_extras")
    late = download(LATE, kit / "_late")
    small_size = sum(p.stat().st_size for p in small)
    extra_size = sum(p.stat().st_size for p in extras)
    per = -(-(small_size + len(blob) + extra_size) // 3)
    first, second = per - small_size, per - extra_size
    pieces = [blob[:first], blob[first : first + second], blob[first + second :]]
    folders = [kit / f"b{n}" for n in (1, 2, 3, 4)]
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
    for n, piece in enumerate(pieces, 1):
        (folders[n - 1] / f"{wheel}.part{n:02d}").write_bytes(piece)
    for path in small:
        shutil.copy(path, folders[0])
    for path in extras:
        shutil.copy(path, folders[1])
    for path in late:
        shutil.copy(path, folders[3])
    (folders[3] / "LAST").write_text(f"3 {wheel}\n")
    for folder in folders:
        size = sum(p.stat().st_size for p in folder.iterdir())
        print(f"{folder}: {size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
