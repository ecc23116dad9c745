"""fanout: run shell and agent jobs in parallel, keep every output, print one verdict."""

from __future__ import annotations

__version__ = "0.1.0"
