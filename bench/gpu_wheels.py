"""Carry folders for the GPU machines: the kit's vLLM 0.26 chunks plus what our side needs, re-split.

    python3 ../shared/gpu/fetch_wheels.py .whl --serving     # the kit: .whl/1, .whl/2, .whl/3
    python bench/gpu_wheels.py                               # -> .whl/b1 .. .whl/bN (N = 5 today)

Adds (py3.12 wheels, downloaded with pip): grpcio >= 1.85.1 (the generated stubs refuse the image's
1.84), grpcio-health-checking / -reflection / -status, googleapis-common-protos, py-spy, and
mistral_common + pycountry (vLLM 0.26's chat path imports them; the kit lacks them), and the
gateway's store (SQLAlchemy, aiosqlite, alembic and their greenlet, Mako, MarkupSafe: the gateway
imports them even with the store off), and the SMG anchor (smg, smg-grpc-servicer, smg-grpc-proto).
Everything is packed in order into folders of `--chunk-mib` (one call each with the working tree,
64 MiB in all); the last holds `LAST`, so `device_install.sh` installs everything in the call that
carries it, and `EXPECT` (the wheel's sha256 and the part count) so that call can first check that
no earlier chunk was lost with a machine given back between calls.
"""

from __future__ import annotations

import argparse
import hashlib
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
SMG = ["smg==1.13.0", "smg-grpc-servicer==0.14.1", "smg-grpc-proto==0.4.28"]  # the smg anchor
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


def pack(items: list[tuple[str, bytes | Path]], limit: int) -> list[list[tuple[str, bytes | Path]]]:
    """Greedy: fill each folder up to `limit` bytes in order, cutting byte blobs where a folder is full."""
    folders: list[list[tuple[str, bytes | Path]]] = [[]]
    room = limit
    for name, item in items:
        if isinstance(item, bytes):
            while item:
                if room <= 0:
                    folders.append([])
                    room = limit
                piece, item = item[:room], item[room:]
                folders[-1].append((name, piece))
                room -= len(piece)
            continue
        size = item.stat().st_size
        if size > room:
            folders.append([])
            room = limit
        folders[-1].append((name, item))
        room -= size
    return folders


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kit", type=Path, default=Path(".whl"), help="folder with the kit's chunks 1..3")
    parser.add_argument("--chunk-mib", type=int, default=58, help="folder size (64 MiB carry minus the tree)")
    args = parser.parse_args()
    kit: Path = args.kit
    (last_chunk,) = [p for p in kit.glob("*/LAST") if p.parent.name.isdigit()]
    _, wheel = last_chunk.read_text().split()
    parts = sorted(kit.glob(f"[0-9]*/{wheel}.part*"), key=lambda p: p.name)
    blob = b"".join(part.read_bytes() for part in parts)
    wheels = sorted((kit / "1").glob("*.whl"))
    wheels += download(EXTRAS, kit / "_extras") + download(SMG, kit / "_smg") + download(LATE, kit / "_late")
    for old in kit.glob("b[0-9]*"):
        shutil.rmtree(old)
    items: list[tuple[str, bytes | Path]] = [(wheel, blob)] + [(p.name, p) for p in wheels]
    folders = pack(items, args.chunk_mib << 20)
    piece = 0
    for n, content in enumerate(folders, 1):
        folder = kit / f"b{n}"
        folder.mkdir()
        for name, item in content:
            if isinstance(item, bytes):
                piece += 1
                (folder / f"{name}.part{piece:02d}").write_bytes(item)
            else:
                shutil.copy(item, folder)
    last = kit / f"b{len(folders)}"
    (last / "LAST").write_text(f"{len(folders)} {wheel}\n")
    # What the installing call checks first: a machine given back between calls loses earlier chunks,
    # and an incomplete wheel fails pip with an unhelpful OSError.
    digest = hashlib.sha256(blob).hexdigest()
    (last / "EXPECT").write_text(f"{digest}  {wheel}\n{piece} parts {len(folders)} folders\n")
    for n in range(1, len(folders) + 1):
        folder = kit / f"b{n}"
        size = sum(p.stat().st_size for p in folder.iterdir())
        print(f"{folder}: {size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
