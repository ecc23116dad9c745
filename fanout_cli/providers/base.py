"""What a provider wire format does: build one call's request, read its reply.

A wire format is the shape of the HTTP exchange (OpenAI-compatible Chat Completions,
Anthropic Messages), not a company: any server that speaks it is called through it.
Pure: no HTTP client is imported here."""

from __future__ import annotations

from typing import Any, ClassVar

from fanout_cli.models import AgentCall


class WireFormat:
    """One wire format. A subclass lives in its own module and is listed once in
    `fanout_cli.providers.WIRE_FORMATS`."""

    name: ClassVar[str]  # the `api` value of a provider
    default_url: ClassVar[str]  # the base URL of the provider that defined it

    def endpoint(self, base_url: str) -> str:
        """The URL calls are posted to, given a provider's base URL."""
        raise NotImplementedError

    def request(
        self, call: AgentCall, prompt: str, key: str | None
    ) -> tuple[dict[str, str], dict[str, Any]]:
        """The headers (with the key, when there is one) and the JSON body of a call;
        `temperature` is added by the caller."""
        raise NotImplementedError

    def reply_text(self, document: Any) -> str | None:
        """The reply's text, or None when the document has none."""
        raise NotImplementedError

    def usage(self, usage: dict[str, Any]) -> dict[str, int | None]:
        """Token counts exactly as the server reported them: None when it did not
        (never a made-up 0), named input_tokens, output_tokens, total_tokens."""
        raise NotImplementedError

    def finish_reason(self, document: dict[str, Any]) -> object:
        """Why the model stopped, as the server said it (checked to be a string)."""
        raise NotImplementedError


def count(usage: dict[str, Any], name: str) -> int | None:
    value = usage.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def joined_texts(parts: list[Any], kind: str | None) -> str | None:
    """The `text` of each part (of type `kind`, when given) joined; None when none has one."""
    texts = [
        part["text"]
        for part in parts
        if isinstance(part, dict)
        and (kind is None or part.get("type") == kind)
        and isinstance(part.get("text"), str)
    ]
    return "".join(texts) if texts else None
