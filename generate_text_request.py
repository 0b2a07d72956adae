"""The demo upstream caller: ask the service for a text and say where it came from.

    python generate_text_request.py "广州有什么好玩的"
    python generate_text_request.py --url http://host:8000 --api-key KEY "写一段描写秋天的文字"

The URL comes from --url, else WRITING_SERVICE_URL, else http://127.0.0.1:8000.
"""

from __future__ import annotations

import argparse
import os
import sys

import httpx


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prompt", help="the writing prompt")
    parser.add_argument("--url", default=os.environ.get("WRITING_SERVICE_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--api-key", default=os.environ.get("WRITING_SERVICE_API_KEY", ""))
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds (default 120)")
    args = parser.parse_args(argv)

    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    try:
        r = httpx.get(
            f"{args.url.rstrip('/')}/generate", params={"prompt": args.prompt}, headers=headers, timeout=args.timeout
        )
    except httpx.HTTPError as exc:
        print(f"error: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 2
    if r.status_code != 200:
        try:
            message = r.json()["error"]["message"]
        except Exception:  # noqa: BLE001
            message = r.text
        print(f"error: HTTP {r.status_code}: {message}", file=sys.stderr)
        return 1
    source = r.headers.get("x-writing-source", "?")
    details = [f"source: {source}"]
    if "x-similarity" in r.headers:
        details.append(f"similarity: {r.headers['x-similarity']}")
    if "x-match-id" in r.headers:
        details.append(f"match id: {r.headers['x-match-id']}")
    print(r.json())
    print("-- " + ", ".join(details), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
