"""The local carrier: a 3PL on loopback that speaks the carrier API of storefront.fulfilment (see its models).

The fulfilment function talks to it with the very adapter it uses for a real carrier (HttpCarrier), and it
sends tracking updates signed as a real carrier's would be, so the local stack runs the real code paths:
API key, idempotency keys, ids, tracking numbers, signatures, redelivery.

    carrier = LocalCarrier(api_key="...", webhook_secret="...", step_seconds=5).start()
    carrier.url                         # CARRIER_API_BASE for the fulfilment function
    carrier.webhook_url = gateway.url + "/webhooks/carriers/local"
    carrier.advance("shp_...")          # the parcel moves on: in_transit, out_for_delivery, delivered
    carrier.cancel("shp_...")           # POST /v1/shipments/{id}/cancel: only before it is handed over (409 after)
    carrier.shipment_id("LC...")        # a shipment's id from its tracking number (what orders show)
    carrier.deliver(event)              # resend any update (duplicates, out-of-order deliveries)
    carrier.inject_failures(503, 503)   # the next API requests answer 503 (then it works again)
    carrier.inject_failures(429, retry_after=60)   # ... with Retry-After
    carrier.hang = True                 # API requests never answer (a carrier outage that times out)

With step_seconds, every shipment advances by itself, one step every step_seconds (make dev uses this);
without, only when asked. GET /track/<tracking number> is the customer's tracking page.
"""

from __future__ import annotations

import html
import json
import logging
import re
import secrets
import string
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from copy import deepcopy
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

from storefront.webhooks.signatures import sign

from local_cloud.servers import BackgroundServer

log = logging.getLogger("local_cloud.carrier")

NEXT_STATUS = {"label_created": "in_transit", "in_transit": "out_for_delivery", "out_for_delivery": "delivered"}
WEBHOOK_ATTEMPTS = 4  # carriers retry a webhook that was not acknowledged with a 2xx
REQUIRED_FIELDS = ("reference", "service", "recipient", "items")


class CarrierApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"code": code, "message": message}}


class LocalCarrier:
    def __init__(
        self,
        *,
        api_key: str,
        webhook_secret: str,
        step_seconds: float | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.step_seconds = step_seconds
        self.webhook_url = ""
        self.hang = False
        self.shipments: dict[str, dict[str, Any]] = {}
        self.requests = 0  # POST /v1/shipments received, answered or not
        self.delivered: list[tuple[dict[str, Any], int]] = []  # (event, HTTP status) per webhook attempt
        self._by_key: dict[str, tuple[dict[str, Any], str]] = {}
        self._failures: deque[tuple[int, int | None]] = deque()  # (status, Retry-After)
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._http = BackgroundServer(host, port, _handler_class(self), "local-carrier")

    @property
    def url(self) -> str:
        return self._http.url

    def start(self) -> LocalCarrier:
        self._http.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._http.stop()

    # ---------------------------------------------------------------- the API

    def create_shipment(
        self,
        body: dict[str, Any],
        idempotency_key: str | None,
        *,
        shipment_id: str | None = None,
        tracking_number: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """POST /v1/shipments; returns (shipment, replayed). The demo data fixes the ids its samples name."""
        if not idempotency_key:
            raise CarrierApiError(400, "idempotency_key_required", "Send an Idempotency-Key header.")
        missing = [name for name in REQUIRED_FIELDS if not body.get(name)]
        if missing:
            raise CarrierApiError(400, "invalid_request", f"Missing fields: {', '.join(missing)}.")
        with self._lock:
            if idempotency_key in self._by_key:
                first_body, shipment_id = self._by_key[idempotency_key]
                if first_body != body:
                    raise CarrierApiError(
                        409, "idempotency_key_reused", "This Idempotency-Key was used with a different request."
                    )
                return deepcopy(self.shipments[shipment_id]), True
            shipment_id = shipment_id or "shp_" + _random(string.ascii_letters + string.digits, 20)
            tracking_number = tracking_number or "LC" + _random(string.digits, 12)
            shipment = {
                "id": shipment_id,
                "status": "label_created",
                "reference": body["reference"],
                "service": body["service"],
                "tracking_number": tracking_number,
                "tracking_url": f"{self.url}/track/{tracking_number}",
                "recipient": body["recipient"],
                "items": body["items"],
                "created_at": _now(),
                "history": [{"status": "label_created", "at": _now()}],
            }
            self.shipments[shipment_id] = shipment
            self._by_key[idempotency_key] = (deepcopy(body), shipment_id)
        if self.step_seconds is not None:
            threading.Thread(target=self._advance_by_itself, args=(shipment_id,), daemon=True).start()
        return deepcopy(shipment), False

    def cancel(self, shipment_id: str) -> dict[str, Any]:
        """Cancel a shipment whose label is all there is; CarrierApiError 409 once the parcel is on its way."""
        with self._lock:
            shipment = self.shipments.get(shipment_id)
            if shipment is None:
                raise CarrierApiError(404, "not_found", "No such shipment.")
            if shipment["status"] not in ("label_created", "cancelled"):
                raise CarrierApiError(
                    409,
                    "shipment_not_cancellable",
                    f"The parcel is {shipment['status'].replace('_', ' ')}: it cannot be cancelled.",
                )
            if shipment["status"] != "cancelled":
                shipment["status"] = "cancelled"
                shipment["history"].append({"status": "cancelled", "at": _now()})
            return deepcopy(shipment)

    def inject_failures(self, *statuses: int, retry_after: int | None = None) -> None:
        """The next len(statuses) API requests answer with these HTTP statuses instead of working."""
        with self._lock:
            self._failures.extend((status, retry_after) for status in statuses)

    def next_failure(self) -> tuple[int, int | None] | None:
        """Counts an authenticated API request; the status to fail it with, if a failure is injected."""
        with self._lock:
            self.requests += 1
            return self._failures.popleft() if self._failures else None

    # ---------------------------------------------------------------- the parcel's journey

    def advance(self, shipment_id: str, status: str | None = None) -> int:
        """Move the shipment to `status` (default: its next one) and send the signed tracking update.
        Returns the webhook's final HTTP status; KeyError for an unknown shipment, ValueError at the end."""
        with self._lock:
            shipment = self.shipments[shipment_id]
            status = status or NEXT_STATUS.get(shipment["status"])
            if status is None or shipment["status"] == "cancelled":
                raise ValueError(f"shipment {shipment_id} is already {shipment['status']}")
            shipment["status"] = status
            shipment["history"].append({"status": status, "at": _now()})
            event = self.event(shipment)
        return self.deliver(event)

    def _advance_by_itself(self, shipment_id: str) -> None:
        while not self._stopped.wait(self.step_seconds):
            try:
                self.advance(shipment_id)
            except ValueError:
                return  # delivered
            if self.shipments[shipment_id]["status"] == "delivered":
                return

    @staticmethod
    def event(shipment: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "evt_" + _random(string.ascii_letters + string.digits, 24),
            "type": "shipment.updated",
            "created": int(time.time()),
            "data": {
                "shipment_id": shipment["id"],
                "tracking_number": shipment["tracking_number"],
                "reference": shipment["reference"],
                "status": shipment["status"],
                "occurred_at": shipment["history"][-1]["at"],
            },
        }

    def deliver(self, event: dict[str, Any], *, timestamp: int | None = None, attempts: int = WEBHOOK_ATTEMPTS) -> int:
        """POST `event` to webhook_url, signed; retried (with backoff) until a 2xx. Returns the last status."""
        if not self.webhook_url:
            raise RuntimeError("LocalCarrier.webhook_url is not set")
        payload = json.dumps(event).encode("utf-8")
        status = 0
        for attempt in range(attempts):
            request = urllib.request.Request(
                self.webhook_url,
                data=payload,
                method="POST",
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": "local-carrier/1.0",
                    "Carrier-Signature": sign(payload, self.webhook_secret, timestamp),
                },
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    status = response.status
            except urllib.error.HTTPError as error:
                status = error.code
            except OSError as error:  # the storefront is not listening (stopping, say)
                log.warning("tracking webhook %s not delivered: %s", event["id"], error)
                status = 0
            log.info("tracking webhook %s (%s) -> %s", event["id"], event["data"]["status"], status)
            with self._lock:
                self.delivered.append((deepcopy(event), status))
            if 200 <= status < 300 or self._stopped.wait(0.5 * 2**attempt):
                break
        return status

    # ---------------------------------------------------------------- the tracking page

    def shipment_id(self, tracking_number: str) -> str:
        """The id of the shipment with this tracking number; KeyError if there is none."""
        with self._lock:
            for shipment in self.shipments.values():
                if shipment["tracking_number"] == tracking_number:
                    return shipment["id"]
        raise KeyError(tracking_number)

    def tracking_page(self, tracking_number: str) -> tuple[int, str]:
        try:
            shipment = deepcopy(self.shipments[self.shipment_id(tracking_number)])
        except KeyError:
            return 404, _page("Unknown tracking number", "<p>No parcel has this tracking number.</p>")
        rows = "".join(
            f"<li><strong>{html.escape(h['status'].replace('_', ' '))}</strong> "
            f"<time>{html.escape(h['at'])}</time></li>"
            for h in reversed(shipment["history"])
        )
        return 200, _page(
            f"Parcel {html.escape(tracking_number)}",
            f"<p>Status: <strong>{html.escape(shipment['status'].replace('_', ' '))}</strong></p>"
            f"<ol reversed>{rows}</ol><p>This is the local carrier: no parcel, no van.</p>",
        )


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
        f'content="width=device-width, initial-scale=1"><title>{title}</title><style>body{{font:16px/1.5 '
        f"system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}}</style></head>"
        f"<body><p>Local carrier</p><h1>{title}</h1>{body}</body></html>"
    )


def _handler_class(carrier: LocalCarrier) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "local-carrier"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            cancel = re.fullmatch(r"/v1/shipments/(shp_[A-Za-z0-9]{1,64})/cancel", self.path)
            if self.path != "/v1/shipments" and cancel is None:
                return self._json(404, {"error": {"code": "not_found", "message": "No such route."}})
            if self.headers.get("Authorization") != f"Bearer {carrier.api_key}":
                return self._json(401, {"error": {"code": "unauthorized", "message": "Invalid API key."}})
            failure = carrier.next_failure()
            if carrier.hang:
                carrier._stopped.wait(3600)  # never answers; the client's timeout ends it
                return None
            if failure is not None:
                status, retry_after = failure
                return self._json(
                    status,
                    {"error": {"code": "unavailable", "message": "Injected failure."}},
                    {"Retry-After": str(retry_after)} if retry_after is not None else {},
                )
            if cancel is not None:
                try:
                    return self._json(200, carrier.cancel(cancel.group(1)))
                except CarrierApiError as error:
                    return self._json(error.status, error.body)
            try:
                body = json.loads(raw)
                if not isinstance(body, dict):
                    raise ValueError("not an object")
                shipment, replayed = carrier.create_shipment(body, self.headers.get("Idempotency-Key"))
            except ValueError:
                return self._json(400, {"error": {"code": "invalid_json", "message": "The body is not a JSON object."}})
            except CarrierApiError as error:
                return self._json(error.status, error.body)
            return self._json(200 if replayed else 201, shipment)

        def do_GET(self) -> None:
            if self.path.startswith("/track/"):
                status, page = carrier.tracking_page(self.path.removeprefix("/track/"))
                payload = page.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return None
            shipment = carrier.shipments.get(self.path.removeprefix("/v1/shipments/"))
            if not self.path.startswith("/v1/shipments/") or shipment is None:
                return self._json(404, {"error": {"code": "not_found", "message": "No such shipment."}})
            return self._json(200, shipment)

        def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug(format, *args)

    return Handler
