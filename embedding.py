"""The embedding model (bge-large-zh in production): where the design card says it lives.

A thin entry point: the adapter itself is ``writing.adapters.embedding.encoder`` (and the batcher in
front of it ``writing.adapters.embedding.batcher``). Run it to see what the configured model makes of
a text, with the service's settings::

    python embedding.py "写一段描写秋天的文字"
"""

from __future__ import annotations

import argparse
import sys

from writing.adapters.embedding.encoder import Embedder, EmbedderInfo, detect_pooling

__all__ = ["Embedder", "EmbedderInfo", "detect_pooling", "main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("text", nargs="+", help="texts to embed as prompts")
    args = parser.parse_args(argv)

    from writing.settings import SettingsError, load_settings
    from writing.wiring import build_embedder

    try:
        embedder = build_embedder(load_settings())
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(embedder.info)
    embedded = embedder.embed_queries_checked(args.text)
    for text, vector, cut in zip(args.text, embedded.vectors, embedded.truncated, strict=True):
        head = ", ".join(f"{x:+.4f}" for x in vector[:4])
        note = f" (longer than {embedder.max_length} tokens: truncated)" if cut else ""
        print(f"{text[:40]!r}: {embedder.token_count(text)} tokens{note}; [{head}, ...]")
    if len(args.text) > 1:
        sims = embedded.vectors @ embedded.vectors.T
        print("cosine similarity to the first:", ", ".join(f"{s:.4f}" for s in sims[0][1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
