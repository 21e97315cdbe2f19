"""Generate the Python stubs for protos/ into the client package (the one source of truth).

Usage: python scripts/gen_protos.py [--check]

--check regenerates into a temporary folder and fails when the committed stubs differ,
so CI catches a proto change without regenerated code.
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUT_ROOT = ROOT / "clients" / "python" / "src"
GENERATED_PACKAGE = Path("gptoss") / "v1"


def _generate(out_root: Path) -> None:
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / GENERATED_PACKAGE).glob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    (out_root / GENERATED_PACKAGE / "__init__.py").write_text(
        '"""Generated gptoss.v1 stubs (scripts/gen_protos.py)."""\n'
    )


def _generated_files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in (root / GENERATED_PACKAGE).glob("*") if p.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed stubs are stale")
    check = parser.parse_args().check
    if not check:
        target = OUT_ROOT / GENERATED_PACKAGE
        for stale in target.glob("*_pb2*.py*"):
            stale.unlink()
        target.mkdir(parents=True, exist_ok=True)
        _generate(OUT_ROOT)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        (fresh / GENERATED_PACKAGE).mkdir(parents=True)
        _generate(fresh)
        expected, actual = _generated_files(fresh), _generated_files(OUT_ROOT)
        stale = [
            str(p)
            for p in expected
            if p not in actual or not filecmp.cmp(fresh / p, OUT_ROOT / p, shallow=False)
        ]
        stale += [str(p) for p in actual if p not in expected]
        if stale:
            print("generated stubs are stale, run `make proto`:", ", ".join(stale), file=sys.stderr)
            return 1
    print("generated stubs are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
