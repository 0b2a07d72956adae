"""The LLM as a judge of one candidate: does this stored text fulfil this request? 是 or 否.

One short prompt, a prefill and one token (``max_tokens=1``, temperature 0). An answer that starts with
neither counts as no verdict (dropped, not guessed). The judge's own error rates are parameters
(``VERIFY_JUDGE_MISS_RATE``, ``VERIFY_JUDGE_FALSE_ALARM_RATE``), estimated on the labelled pairs with
``python -m writing.cli.judge_errors``; the bound corrects for them.
"""

from __future__ import annotations

from writing.core.models import SamplingParams

MAX_REQUEST_CHARS = 1000  # of the request, and of the stored text, that the judge is shown
MAX_TEXT_CHARS = 1500
SYSTEM = "你是严格的审核员。判断给出的文本是否满足用户的请求：内容、数字、时间、对象、否定和约束都必须相符。只回答“是”或“否”。"
PARAMS = SamplingParams(max_tokens=1, temperature=0.0, top_p=1.0)
LEADING = '"\u201c\u300c\u300e*\uff1a: '  # quotes, brackets and colons a model may open with


def judge_messages(request: str, stored_text: str) -> list[dict]:
    user = (
        f"请求：{request[:MAX_REQUEST_CHARS]}\n\n文本：{stored_text[:MAX_TEXT_CHARS]}\n\n"
        "这段文本是否满足这个请求？只回答“是”或“否”。"
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def parse_verdict(text: str) -> bool | None:
    """True: the judge says the candidate is wrong (否); False: right (是); None: no verdict."""
    head = text.strip().lstrip(LEADING).lower()
    if head.startswith(("否", "不", "no")):
        return True
    if head.startswith(("是", "yes")):
        return False
    return None
