"""Bad input stays with its sender (issue: hardening)."""

from __future__ import annotations

import asyncio

from tests.support.apps import running_app
from writing.devtools.fake_llm import FakeLLM

GOOD = ["写一段描写秋天的文字", "介绍一下西湖", "写一首关于大海的诗", "请写一封感谢信"]
LONE = b'"\\ud800 a lone surrogate"'  # valid JSON whose string no UTF-8 encoder accepts


async def test_a_lone_surrogate_is_a_422_while_the_requests_beside_it_are_answered(make_settings):
    with FakeLLM() as fake:
        async with running_app(make_settings(llm_base_url=fake.base_url, embedding_batch_wait_ms=20)) as client:
            json_headers = {"content-type": "application/json"}
            bad = [
                client.post("/v1/search", content=b'{"prompt": ' + LONE + b"}", headers=json_headers),
                client.post("/v1/generate", content=b'{"prompt": ' + LONE + b"}", headers=json_headers),
                client.post(
                    "/v1/chat/completions",
                    content=b'{"messages": [{"role": "system", "content": '
                    + LONE
                    + b'}, {"role": "user", "content": "hi"}]}',
                    headers=json_headers,
                ),
            ]
            good = [client.post("/v1/search", json={"prompt": p}) for p in GOOD]
            good += [client.post("/v1/generate", json={"prompt": p}) for p in GOOD]
            results = await asyncio.gather(*bad, *good)
            for r in results[: len(bad)]:
                assert r.status_code == 422, r.text
                assert "surrogate" in r.json()["error"]["message"]
            assert [r.status_code for r in results[len(bad) :]] == [200] * len(good)
