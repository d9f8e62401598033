"""The one OpenAI-compatible chat client path: the LLM news scorer and the daily insights use it.

Any endpoint that speaks the OpenAI chat-completions API works (``base_url`` + ``model``);
the key comes only from ``AITRADER_LLM_API_KEY`` in the environment, is handed to the SDK
and never logged. The SDK owns timeouts and retries; callers catch its errors (any
exception from :func:`chat`) and fall back, so an LLM never stops the agent.
"""

from __future__ import annotations

import os
from typing import Any

KEY_ENV = "AITRADER_LLM_API_KEY"


def api_key() -> str | None:
    """The key from the environment (None when unset or empty)."""
    return os.environ.get(KEY_ENV) or None


def chat_client(*, base_url: str, api_key: str, timeout: float = 20.0, max_retries: int = 2) -> Any:
    """An ``openai.OpenAI`` client for ``base_url`` (imported lazily: nothing loads it unless used)."""
    from openai import OpenAI

    return OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=max_retries)


def chat(client: Any, *, model: str, system: str, user: str, json_answer: bool = False,
         max_tokens: int | None = None) -> str:
    """One deterministic (temperature 0) chat completion; the answer's text ("" when empty).

    ``json_answer`` asks for a JSON object (``response_format``); the caller still validates it."""
    kwargs: dict[str, Any] = {"model": model, "temperature": 0,
                              "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}
    if json_answer:
        kwargs["response_format"] = {"type": "json_object"}
    if max_tokens is not None:
        kwargs["max_tokens"] = max_tokens
    answer = client.chat.completions.create(**kwargs)
    return str(answer.choices[0].message.content or "")
