"""The wire formats agent calls speak, by a provider's `api` name.

`WIRE_FORMATS` is the one table; each format is a class in its own module. Cheap to
import: no HTTP client (only the agent executor's session imports httpx2)."""

from __future__ import annotations

from collections.abc import Mapping

from fanout_cli.providers.anthropic import AnthropicMessages
from fanout_cli.providers.base import WireFormat
from fanout_cli.providers.openai import OpenAIChat

WIRE_FORMATS: Mapping[str, WireFormat] = {
    wire.name: wire for wire in (OpenAIChat(), AnthropicMessages())
}

__all__ = ["WIRE_FORMATS", "WireFormat"]
