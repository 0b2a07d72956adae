"""The LLM stand-in's launcher (writing/devtools/local_llm.py): the command it runs, the defaults it gives
llama.cpp's server, the prompt it lays out for the pretrained Gemma, and that what the service sends an LLM
is unchanged by any of it. Fast: no server, no model (the GGUF's path is given)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from writing.adapters.llm.client import LLMClient
from writing.core.models import SamplingParams
from writing.devtools import local_llm

ROOT = Path(local_llm.__file__).resolve().parents[2]


def test_the_standin_runs_this_file_in_the_llm_venv_with_its_prompt_format():
    cmd = local_llm.command(9000, model="/m.gguf", python="/venv-llm/python", threads=2)
    assert cmd[:5] == [
        "/venv-llm/python",
        str(Path(local_llm.__file__).resolve()),
        "serve",
        "--chat_format",
        "writing-fewshot-zh",
    ]
    assert cmd[5:] == [
        "--model", "/m.gguf", "--model_alias", "gemma-3-270m-it", "--host", "127.0.0.1", "--port", "9000",
        "--n_ctx", "2048", "--verbose", "False", "--n_threads", "2",
    ]  # fmt: skip


def test_stock_is_the_server_as_it_was_started_before():
    cmd = local_llm.command(9000, model="/m.gguf", python="/venv-llm/python")
    stock = local_llm.command(9000, model="/m.gguf", python="/venv-llm/python", stock=True)
    assert stock[:5] == ["/venv-llm/python", "-m", "llama_cpp.server", "--chat_format", "gemma"]
    assert stock[5:] == cmd[5:]  # the same model, alias, address and context either way


def test_the_sampling_defaults_are_for_fields_the_service_never_sets_itself():
    assert local_llm.SAMPLING_DEFAULTS == {
        "repeat_penalty": 1.3,
        "frequency_penalty": 0.3,
        "presence_penalty": 0.3,
        "min_p": 0.1,
    }
    client = LLMClient(base_url="http://127.0.0.1:9/v1", api_key="EMPTY")
    sent = client._params(None)
    # what the service sends an LLM on a miss, whatever the LLM: the settings' three fields and nothing else
    assert sent == {"max_tokens": 512, "temperature": 0.7, "top_p": 0.9}
    assert not set(local_llm.SAMPLING_DEFAULTS) & set(sent)
    # a caller's own value still goes through as given (and so overrides the stand-in's default)
    given = client._params(SamplingParams(extra={"frequency_penalty": 0.0}))
    assert given["extra_body"] == {"frequency_penalty": 0.0}


def test_one_request_becomes_a_document_the_pretrained_model_continues_with_one_answer():
    prompt, stop = local_llm.format_prompt([{"role": "user", "content": "广州有什么好玩的"}])
    assert prompt.startswith(local_llm.PREAMBLE + "\n\n请求：写一句关于春天的话\n回答：春风")
    assert prompt.endswith("\n\n请求：广州有什么好玩的\n回答：")
    assert prompt.count("请求：") == len(local_llm.EXAMPLES) + 1
    assert stop[:3] == ["\n\n请求：", "\n请求：", "请求："]  # longest first: llama.cpp cuts at the first found


def test_system_messages_and_earlier_turns_keep_their_place():
    prompt, _ = local_llm.format_prompt(
        [
            {"role": "system", "content": "你是写作助手"},
            {"role": "user", "content": "写一句话"},
            {"role": "assistant", "content": "天很蓝。"},
            {"role": "user", "content": [{"type": "text", "text": "再写一句"}]},
        ]
    )
    assert prompt.startswith(local_llm.PREAMBLE + "\n\n说明：你是写作助手\n\n请求：写一句关于春天的话")
    assert prompt.endswith("\n\n请求：写一句话\n回答：天很蓝。\n\n请求：再写一句\n回答：")


def test_main_starts_the_standin_or_the_stock_server(monkeypatch):
    ran = []
    monkeypatch.setattr(local_llm, "gguf_path", lambda python: "/m.gguf")
    monkeypatch.setattr(local_llm.os, "execve", lambda path, cmd, env: ran.append((cmd, env)))
    local_llm.main(["--port", "9123", "--threads", "2"])
    local_llm.main(["--port", "9124", "--stock"])
    (cmd, env), (stock, stock_env) = ran
    assert cmd[2:5] == ["serve", "--chat_format", "writing-fewshot-zh"] and cmd[-2:] == ["--n_threads", "2"]
    assert env["PORT"] == "9123" and env["HOST"] == "127.0.0.1"
    assert stock[1:5] == ["-m", "llama_cpp.server", "--chat_format", "gemma"] and stock_env["PORT"] == "9124"


def test_the_launcher_imports_only_the_standard_library_at_the_top():
    """.venv-llm runs the file by path, without this project's package or its dependencies."""
    tree = ast.parse(Path(local_llm.__file__).read_text(encoding="utf-8"))
    top = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            top.add(node.module.split(".")[0])
    assert top <= set(sys.stdlib_module_names) | {"__future__"}, top - set(sys.stdlib_module_names)


def test_run_sh_gives_the_standin_a_short_answer_unless_told_otherwise():
    script = (ROOT / "scripts" / "run.sh").read_text(encoding="utf-8")
    block = script[script.index('if [ -z "${LLM_BASE_URL:-}" ]; then\n  mkdir') :]
    block = block[: block.index("\nfi\n")]
    assert 'export LLM_MAX_TOKENS="${LLM_MAX_TOKENS:-256}"' in block  # only where run.sh starts the stand-in
