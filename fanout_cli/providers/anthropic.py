"""Anthropic Messages."""

from __future__ import annotations

from typing import Any

from fanout_cli.models import AgentCall
from fanout_cli.providers.base import WireFormat, count, joined_texts

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024  # the Messages API requires max_tokens


class AnthropicMessages(WireFormat):
    name = "anthropic"
    default_url = "https://api.anthropic.com"

    def endpoint(self, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/v1/messages"

    def request(
        self, call: AgentCall, prompt: str, key: str | None
    ) -> tuple[dict[str, str], dict[str, Any]]:
        headers = {
            "content-type": "application/json",
            "user-agent": "fanout",
            "anthropic-version": ANTHROPIC_VERSION,
        }
        if key:
            headers["x-api-key"] = key
        body: dict[str, Any] = {"model": call.model}
        if call.system:
            body["system"] = call.system
        body["messages"] = [{"role": "user", "content": prompt}]
        body["max_tokens"] = call.max_tokens or DEFAULT_MAX_TOKENS
        return headers, body

    def reply_text(self, document: Any) -> str | None:
        if not isinstance(document, dict):
            return None
        blocks = document.get("content")
        if not isinstance(blocks, list):
            return None
        if blocks == []:  # an empty reply is a reply
            return ""
        return joined_texts(blocks, "text")

    def usage(self, usage: dict[str, Any]) -> dict[str, int | None]:
        counts = {
            "input_tokens": count(usage, "input_tokens"),
            "output_tokens": count(usage, "output_tokens"),
            "total_tokens": None,  # the Messages API does not report one
        }
        for extra in ("cache_creation_input_tokens", "cache_read_input_tokens"):
            if extra in usage:
                counts[extra] = count(usage, extra)
        return counts

    def finish_reason(self, document: dict[str, Any]) -> object:
        return document.get("stop_reason")
