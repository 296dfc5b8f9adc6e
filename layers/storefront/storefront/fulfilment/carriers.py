"""Carriers (3PLs) behind one small interface, and the HTTP adapter for the carrier API in models.py.

Locally the same adapter talks to local_cloud/local_carrier.py, which speaks that API on loopback and sends
signed tracking updates, as the payment adapter talks to the local Stripe emulator.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, Protocol

from pydantic import ValidationError

from storefront.fulfilment.models import Shipment, ShipmentRequest

log = logging.getLogger("storefront.fulfilment")


class Carrier(Protocol):
    name: str

    def create_shipment(self, request: ShipmentRequest, idempotency_key: str) -> Shipment: ...
    def cancel_shipment(self, shipment_id: str) -> None: ...


class CarrierRejected(Exception):
    """The carrier refused the shipment (4xx): repeating the same request will not help; a person must look."""


class ShipmentNotCancellable(CarrierRejected):
    """The carrier will not cancel the shipment (409): the parcel was handed over."""


class CarrierUnavailable(Exception):
    """No useful answer (5xx, 429, timeout, connection error) even after retries. The outcome is unknown;
    repeating the request with the same idempotency key later is safe."""


class HttpCarrier:
    def __init__(
        self,
        name: str,
        api_base: str,
        api_key: Callable[[], str],
        *,
        timeout: float = 5.0,
        max_retries: int = 2,
        backoff: float = 0.5,
    ) -> None:
        self.name = name
        self._api_base = api_base.rstrip("/")
        self._api_key = api_key  # read per request: a rotated key (cached by storefront.secrets) is picked up
        self._timeout = timeout
        self._max_retries = max_retries
        self._backoff = backoff

    @property
    def longest_call_seconds(self) -> float:
        """How long create_shipment can take at worst: every attempt timing out, plus the backoff between them."""
        waits: float = sum(self._backoff * 2**i for i in range(self._max_retries))  # int ** int is Any to mypy
        return (self._max_retries + 1) * self._timeout + waits

    def create_shipment(self, request: ShipmentRequest, idempotency_key: str) -> Shipment:
        answer = self._post("/v1/shipments", request.model_dump(mode="json", exclude_none=True), idempotency_key)
        try:
            return Shipment.model_validate(answer)
        except ValidationError as error:
            raise CarrierRejected(f"carrier {self.name} answered with an unusable shipment: {error}") from error

    def cancel_shipment(self, shipment_id: str) -> None:
        """POST /v1/shipments/{id}/cancel: done (or done before); ShipmentNotCancellable once handed over."""
        self._post(f"/v1/shipments/{shipment_id}/cancel", {}, idempotency_key=f"cancel-{shipment_id}")

    def _post(self, path: str, body: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        data = json.dumps(body).encode()
        headers = {
            "Authorization": f"Bearer {self._api_key()}",
            "Idempotency-Key": idempotency_key,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        # The same Idempotency-Key on every attempt: the carrier returns the first shipment, never a second one.
        for attempt in range(self._max_retries + 1):
            last_attempt = attempt == self._max_retries
            # The carrier's https: API base comes from the configuration, never from a request.
            request = urllib.request.Request(self._api_base + path, data=data, headers=headers, method="POST")  # noqa: S310
            try:
                with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310 - URL from config
                    answer: dict[str, Any] = json.loads(response.read())
                    return answer
            except urllib.error.HTTPError as error:
                detail = error.read()[:500].decode("utf-8", "replace")
                if error.code == 409 and path.endswith("/cancel"):
                    raise ShipmentNotCancellable(f"carrier {self.name} will not cancel: {detail}") from error
                if error.code < 500 and error.code != 429:
                    raise CarrierRejected(
                        f"carrier {self.name} refused the shipment ({error.code}): {detail}"
                    ) from error
                if last_attempt or _retry_after(error) > self._backoff * 2**attempt:
                    # Out of attempts, or asked to wait longer than we would: the queue retries it later.
                    raise CarrierUnavailable(
                        f"carrier {self.name} answered {error.code} after {attempt + 1} "
                        f"attempts (Retry-After: {error.headers.get('Retry-After')})"
                    ) from error
                log.warning("carrier answered %s; retrying (attempt %d)", error.code, attempt + 1)
            except (
                urllib.error.URLError,
                http.client.HTTPException,
                TimeoutError,
                ConnectionError,
                ValueError,
            ) as error:
                if last_attempt:
                    raise CarrierUnavailable(
                        f"carrier {self.name} unreachable after {attempt + 1} attempts: "
                        f"{getattr(error, 'reason', None) or error!r}"
                    ) from error
                log.warning("carrier unreachable (%r); retrying (attempt %d)", error, attempt + 1)
            time.sleep(self._backoff * 2**attempt * random.uniform(0.5, 1))  # noqa: S311  jitter: retries of many don't align
        raise AssertionError("unreachable")


def _retry_after(error: urllib.error.HTTPError) -> float:
    """The seconds a 429/503 asks us to wait (Retry-After in seconds; an HTTP date counts as long)."""
    value = (error.headers.get("Retry-After") or "").strip()
    if not value:
        return 0.0
    try:
        return max(float(value), 0.0)
    except ValueError:
        return float("inf")
