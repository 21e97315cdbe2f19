"""The gateway speaks to the service only through the gptoss client: no generated stubs, no
contract names of its own, and modules small enough to read."""

from __future__ import annotations

import ast
from pathlib import Path

GATEWAY = Path(__file__).resolve().parents[2] / "gateway"
MODULES = sorted(GATEWAY.glob("*.py"))


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_gateway_imports_no_generated_stubs_and_no_raw_grpc_errors() -> None:
    assert MODULES
    for path in MODULES:
        stubs = {name for name in imported_modules(path) if name.endswith(("_pb2", "_pb2_grpc"))}
        assert not stubs, f"{path.name} imports {stubs}: go through gptoss instead"
        assert "google.rpc" not in {name.rsplit(".", 1)[0] for name in imported_modules(path)}, path.name


def test_contract_names_come_from_gptoss_contract() -> None:
    for path in MODULES:
        text = path.read_text()
        for literal in ('"gptoss.v1.InferenceService"', '"grpc-status-details-bin"', '"gptoss.v1"'):
            assert literal not in text, f"{path.name} spells {literal}; import it from gptoss.contract"


def test_modules_stay_small() -> None:
    for path in MODULES:
        assert len(path.read_text().splitlines()) <= 300, path.name
