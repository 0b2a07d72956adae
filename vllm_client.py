"""The OpenAI-compatible LLM client (vLLM with Qwen2-7B-Instruct in production): where the design
card says it lives.

A thin entry point: the adapter itself is ``writing.adapters.llm.client``. Run it to ask the
configured LLM directly, bypassing retrieval::

    python vllm_client.py "写一段描写秋天的文字"       # LLM_BASE_URL, LLM_MODEL, LLM_MAX_TOKENS ...
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from writing.adapters.llm.client import LLMClient
from writing.core.models import Completion, Delta, SamplingParams
from writing.errors import LLMError

__all__ = ["Completion", "Delta", "LLMClient", "LLMError", "SamplingParams", "main"]


async def _ask(prompt: str) -> int:
    from writing.settings import load_settings
    from writing.wiring import build_llm

    llm = build_llm(load_settings())
    try:
        async for delta in llm.stream([{"role": "user", "content": prompt}]):
            print(delta.text, end="", flush=True)
        print()
    except LLMError as exc:
        print(f"\nerror: {exc.public_message} ({exc})", file=sys.stderr)
        return 1
    finally:
        await llm.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prompt")
    args = parser.parse_args(argv)
    from writing.settings import SettingsError

    try:
        return asyncio.run(_ask(args.prompt))
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
