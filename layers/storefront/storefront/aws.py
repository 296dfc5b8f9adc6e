"""boto3 clients for the services only some of a function's invocations call, made at the first call.

Making a client loads its service's API model: 20-120 ms of a cold start each (Lambda's is the largest;
docs/benchmarks.md, part 7). A function's main client (DynamoDB, mostly) is made at import, as usual; one it needs
only on some paths (the payment webhook's Lambda client, for a refund to finish) is a LazyClient, made when first
used, or before the snapshot of a SnapStart function (storefront.snapstart), which then restores with it ready.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3

from storefront import snapstart


class LazyClient:
    """A stand-in for `boto3.client(service, **options)` that makes it at the first attribute asked of it."""

    def __init__(self, service: str, **options: Any) -> None:
        self._service = service
        self._options = options
        self._client: Any = None
        self._lock = threading.Lock()
        snapstart.prime(self.make)

    def make(self) -> Any:
        if self._client is None:
            with self._lock:  # one client, however many threads ask first (clients are thread-safe)
                if self._client is None:
                    # The stubs overload client() per Literal service name; this one is known only at run time.
                    self._client = boto3.client(self._service, **self._options)  # type: ignore[call-overload]
        return self._client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.make(), name)
