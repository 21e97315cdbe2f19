"""`python -m gateway.store upgrade|current [--store-url URL | --data-dir DIR]`: apply or show migrations
(the gateway also applies them at start; this is for deploy steps that migrate first)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway.store import Store, StoreUnavailable, revision, sqlite_url
from gateway.store._engine import create_engine


async def _run(action: str, url: str) -> str | None:
    if action == "upgrade":
        store = await Store.open(url)
        await store.close()
    engine = create_engine(url)
    try:
        return await revision(engine)
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.store", description=__doc__)
    parser.add_argument("action", choices=("upgrade", "current"))
    parser.add_argument("--store-url", help="database URL [env GPTOSS_GATEWAY_STORE_URL]")
    parser.add_argument("--data-dir", type=Path, help="SQLite's directory when no URL is given")
    args = parser.parse_args(argv)
    from gateway._settings import GatewaySettings

    given = {k: v for k, v in (("store_url", args.store_url), ("data_dir", args.data_dir)) if v is not None}
    settings = GatewaySettings(**given)
    url = settings.store_url or sqlite_url(settings.data_dir)
    try:
        current = asyncio.run(_run(args.action, url))
    except StoreUnavailable as exc:
        print(f"error: the store is unavailable: {exc}", file=sys.stderr)
        return 1
    print(f"schema revision: {current}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
