"""OpenAI-compatible Chat Completions: OpenAI, and the local servers that speak it
(llama.cpp, vLLM, Ollama, LM Studio ...)."""

from __future__ import annotations

from typing import Any

from fanout_cli.models import AgentCall
from fanout_cli.providers.base import WireFormat, count, joined_texts


class OpenAIChat(WireFormat):
    name = "openai"
    default_url = "https://api.openai.com/v1"

    def endpoint(self, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/chat/completions"

    def request(
        self, call: AgentCall, prompt: str, key: str | None
    ) -> tuple[dict[str, str], dict[str, Any]]:
        headers = {"content-type": "application/json", "user-agent": "fanout"}
        if key:
            headers["authorization"] = f"Bearer {key}"
        messages = [{"role": "system", "content": call.system}] if call.system else []
        body: dict[str, Any] = {
            "model": call.model,
            "messages": [*messages, {"role": "user", "content": prompt}],
        }
        if call.max_tokens is not None:
            body["max_tokens"] = call.max_tokens
        return headers, body

    def reply_text(self, document: Any) -> str | None:
        if not isinstance(document, dict):
            return None
        choices = document.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return None
        message = choices[0].get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            return content
        if isinstance(content, list):  # content parts, as some servers send
            return joined_texts(content, None)
        return None

    def usage(self, usage: dict[str, Any]) -> dict[str, int | None]:
        return {
            "input_tokens": count(usage, "prompt_tokens"),
            "output_tokens": count(usage, "completion_tokens"),
            "total_tokens": count(usage, "total_tokens"),
        }

    def finish_reason(self, document: dict[str, Any]) -> object:
        choices = document.get("choices")
        first = choices[0] if isinstance(choices, list) and choices else None
        return first.get("finish_reason") if isinstance(first, dict) else None
