"""The curated corpus in Milvus (Lite or a server): where the design card says it lives.

A thin entry point: the adapter itself is ``writing.adapters.milvus.corpus`` (over the shared
connection and collection helper of ``writing.adapters.milvus.collection``). Run it to see the
collection the service's settings point at::

    python milvus_server.py            # MILVUS_URI / MILVUS_LITE_PATH, MILVUS_COLLECTION
"""

from __future__ import annotations

import json
import sys

from writing.adapters.milvus.corpus import MilvusStore
from writing.errors import DimensionMismatch, StoreLocked, VectorStoreError

__all__ = ["DimensionMismatch", "MilvusStore", "StoreLocked", "VectorStoreError", "main"]


def main() -> int:
    from writing.settings import SettingsError, load_settings
    from writing.wiring import build_store

    try:
        store = build_store(load_settings())
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        store.open(None)
        print(json.dumps({"target": store.target, **store.stats()}, indent=1))
    except (VectorStoreError, DimensionMismatch, StoreLocked) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
