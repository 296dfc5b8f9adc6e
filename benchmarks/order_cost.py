"""What one order costs on AWS: every billable request one order makes, counted on the local cloud, priced at
AWS's us-east-1 list prices (no free tier).

One local cloud (moto + the real handlers in-process + the gateway + the local payment provider) runs a few
orders one at a time, each with its own new product and ready cart (written directly, not counted). Each
scenario is what a shopper and the shop do for one order, over HTTP:

  delivered (first order)  POST /checkout, GET /orders/{id} once at awaiting_payment (the frontend needs the
                       client_secret), the customer pays (the local provider's POST /dev/payments/{id}/succeed,
                       which sends the signed webhook, POST /webhooks/payments/fake), GET /orders/{id} once more
                       (the result page); the fulfilment function ships it (SQS), the local carrier sends three
                       signed tracking webhooks (in transit, out for delivery, delivered), and the integration
                       events (DynamoDB streams -> EventBridge) are published. The first order after start-up:
                       caches are cold.
  delivered (steady state)  the same again, --repeat times, with warm caches (secrets, clients); the order with
                       the median Lambda time is reported, and it is what the cost table prices. Stream batches
                       depend on timing (records that arrive together share an invocation), so their count may
                       differ between orders: on AWS, batches of up to 100 records within 1 s make them cheaper.
  declined, then paid  the same, but first /dev/payments/{id}/fail (the order keeps waiting, the shop shows the
                       decline: one more GET /orders/{id}), then succeed: delivered.
  payment declined     /dev/payments/{id}/fail three times (MaxPaymentAttempts): the payment cancelled at the
                       provider, payment_failed, the stock released.
  out of stock         POST /checkout for more than the stock, past the checkout's sold-out check (a buyer took
                       the stock meanwhile), GET /orders/{id} once: rejected by the reservation.
  expired              POST /checkout, GET /orders/{id} once, nobody pays: expired after --payment-timeout s,
                       the stock released. The whole cloud runs with that short timeout (a parameter override of
                       PaymentTimeoutSeconds; the template's MinValue of 60 is not enforced locally): it only
                       changes the WaitForPayment timeout in the execution input, none of the requests an order makes.
  refunded             nobody pays in the window: the payment is processing (a bank debit; the local provider's
                       processing()), past the grace too (--payment-timeout s, PaymentProcessingGraceSeconds), so
                       the order expires; then it succeeds, and the shop refunds it in full automatically (until
                       order.refunded is published).
  refunded by an operator  delivered as above, then one of its two units comes back: an operator's
                       POST /admin/orders/{id}/refunds (by lines, restock; the admin's token is fetched before the
                       meter starts: signing in is not per order), until order.refunded is published.
  cancelled after payment  paid and on its way to the carrier (fulfilling), then an operator's
                       POST /admin/orders/{id}/cancel: the shipment cancelled, the payment refunded, the units
                       returned, until order.refunded is published.
  one more GET /orders/{id}  what each extra status poll by a frontend adds.

The runner's own reads (waiting for statuses, execution history) use boto3 clients that are not counted.

How each number is counted (all in this process; nothing is sampled):
  (a) DynamoDB capacity. Every DynamoDB request from a handler (or from Step Functions) asks for
      ReturnConsumedCapacity=TOTAL (a hook on botocore adds it), and the answer's ConsumedCapacity is summed: moto
      5.2.5 answers with constants whatever the size (GetItem and UpdateItem 0.5, PutItem/DeleteItem/Query/Scan 1.0,
      BatchGetItem 1 per key, nothing for TransactWriteItems), so its sum is printed but not used. The units used
      are COMPUTED FROM ITEM SIZES by DynamoDB's rules: moto's request handling is wrapped, under the local cloud's
      DynamoDB lock, to size every item a request reads or writes before and after it (DynamoDB's item-size rules:
      names + values, numbers ~1 byte per 2 digits + 1, 3 bytes + 1 per element for lists and maps). Reads: 4 KB per
      unit, strongly consistent 1, eventually consistent 0.5, BatchGetItem per item, whole items (a
      ProjectionExpression does not make a read cheaper); writes: 1 KB per unit of the larger of the item before and
      after; transactions (TransactWriteItems/TransactGetItems) 2 per unit; a write refused by its condition still
      costs its units; at least 1 unit (0.5 eventual) per item. On-demand RRU/WRU follow the same rules.
      Global secondary indexes are charged too: for every item written, each index's entry before and after (its
      key attributes present or not; its size = the index's keys, the table's keys, the projected attributes and
      100 bytes) gives a put, a delete, both (its key changed) or an update (a projected attribute changed), 1 WRU
      per KB each, standard writes also under a transaction (an index is updated after the table, outside it).
  (b) Lambda invocations: LocalFunction.invoke (every way a function runs locally) is wrapped; its in-process
      wall time is the measured duration (billed rounded up to the millisecond).
  (c) Step Functions state transitions: StateEntered events in the execution's get_execution_history, plus a
      transition per retry of a task (TaskScheduled events beyond the first per task state), as AWS bills them.
  (d) API Gateway requests: Gateway.handle is wrapped; the local-only /dev routes are listed but not billed.
  (e) SQS and (f) Secrets Manager requests, and the rest: every boto3 API call is counted by service and
      operation (BaseClient._make_api_call is wrapped), with the function that made it.
  (g) Application log bytes: each handler's Powertools logger writes, at the template's LOG_LEVEL, into a sink
      that counts bytes (CloudWatch Logs ingestion; shown beside the cost table, not in it).

    PYTHONPATH=layers/storefront:. .venv/bin/python -m benchmarks.order_cost [--payment-timeout 5] [--repeat 5]
"""

from __future__ import annotations

import argparse
import contextvars
import http.client
import itertools
import json
import math
import os
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from benchmarks.checkout_throughput import Shop, checkout_body, start_cloud

# ---------------------------------------------------------------- prices

PRICES_AS_OF = "2026-11-26"
# us-east-1 list prices, without free tier, as known on PRICES_AS_OF: verify before relying on them.
PRICES = {  # key: (USD per unit, as the table shows it, what it is)
    "dynamodb_rru": (
        0.125 / 1e6,
        "$0.125 per million RRU",
        "DynamoDB on-demand read request unit, Standard table "
        "class (the price since AWS halved on-demand throughput prices on 2024-11-01)",
    ),
    "dynamodb_wru": (
        0.625 / 1e6,
        "$0.625 per million WRU",
        "DynamoDB on-demand write request unit, Standard table class",
    ),
    "lambda_request": (0.20 / 1e6, "$0.20 per million", "Lambda requests"),
    "lambda_gb_s": (0.0000133334, "$0.0000133334 per GB-s", "Lambda arm64 duration, first 7.5 billion GB-s a month"),
    "sfn_transition": (0.025 / 1e3, "$0.025 per 1,000", "Step Functions Standard state transitions"),
    "http_api_request": (
        1.00 / 1e6,
        "$1.00 per million",
        "API Gateway HTTP API requests, first 300 million a month (metered per 512 KB)",
    ),
    "sqs_request": (0.40 / 1e6, "$0.40 per million", "SQS standard queue requests (per 64 KB chunk)"),
    "secrets_call": (0.05 / 1e4, "$0.05 per 10,000", "Secrets Manager API calls"),
    "eventbridge_event": (1.00 / 1e6, "$1.00 per million", "EventBridge custom events published (per 64 KB chunk)"),
}
CLOUDWATCH_LOGS_PER_GB = 0.50  # us-east-1 log ingestion (first tier), as known on PRICES_AS_OF
LAMBDA_MEMORY_GB = 1024 / 1024  # template.yaml Globals: MemorySize 1024, Architectures [arm64]

# ---------------------------------------------------------------- the meter


def _number_size(text: str) -> int:
    digits = text.lstrip("-+").replace(".", "").split("e")[0].split("E")[0].strip("0") or "0"
    return (len(digits) + 1) // 2 + 1


def value_size(value: Any) -> int:
    """DynamoDB's size of one attribute value, from the wire format ({"S": ...}) or a moto DynamoType."""
    if hasattr(value, "type") and hasattr(value, "value"):
        kind, content = value.type, value.value
    else:
        ((kind, content),) = value.items()
    if kind == "S":
        return len(content.encode())
    if kind == "N":
        return _number_size(str(content))
    if kind == "B":
        return len(content) if isinstance(content, bytes) else math.ceil(len(content) * 3 / 4)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in content)
    if kind == "NS":
        return sum(_number_size(str(n)) for n in content)
    if kind == "BS":
        return sum(len(b) for b in content)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in content)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in content.items())
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(attributes: dict[str, Any] | None) -> int:
    return sum(len(name.encode()) + value_size(v) for name, v in (attributes or {}).items())


@dataclass
class Target:
    """One item a DynamoDB request reads or writes."""

    table: str
    key: dict[str, Any]
    kind: str  # read | write
    consistent: bool = False
    transactional: bool = False


def target_units(target: Target, size_before: int, size_after: int) -> tuple[float, float]:
    """(read, write) request units DynamoDB charges for one item of a request, from its sizes before and after."""
    if target.kind == "read":
        units = max(1, math.ceil(size_before / 4096))
        return units * (2 if target.transactional else 1 if target.consistent else 0.5), 0.0
    units = max(1, math.ceil(max(size_before, size_after) / 1024))
    return 0.0, float(units * (2 if target.transactional else 1))


@dataclass
class DynamoUse:
    caller: str
    table: str
    operation: str
    rru: float = 0.0
    wru: float = 0.0
    index_wru: float = 0.0  # of wru: the writes of the table's global secondary indexes
    moto_reported: float = 0.0
    approximate: bool = False


@dataclass
class Usage:
    """Everything counted while the meter ran."""

    invocations: Counter[tuple[str, str]] = field(default_factory=Counter)  # (function, event kind)
    durations_ms: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    api: Counter[tuple[str, bool]] = field(default_factory=Counter)  # (route, billable)
    calls: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (service, operation, caller)
    idle_polls: int = 0
    dynamodb: list[DynamoUse] = field(default_factory=list)
    transitions: int = 0  # states entered + task retries
    retries: int = 0
    states: list[str] = field(default_factory=list)
    log_bytes: int = 0  # what the handlers' loggers wrote (CloudWatch Logs would ingest it)

    def service_calls(self, service: str) -> int:
        return sum(n for (s, _, _), n in self.calls.items() if s == service)

    @property
    def rru(self) -> float:
        return sum(u.rru for u in self.dynamodb)

    @property
    def wru(self) -> float:
        return sum(u.wru for u in self.dynamodb)

    @property
    def lambda_requests(self) -> int:
        return sum(self.invocations.values())

    @property
    def gb_seconds(self) -> float:  # Lambda bills duration rounded up to the millisecond, per invocation
        return sum(math.ceil(d) for ds in self.durations_ms.values() for d in ds) / 1000 * LAMBDA_MEMORY_GB

    @property
    def api_requests(self) -> int:
        return sum(n for (_, billable), n in self.api.items() if billable)

    @property
    def lambda_ms(self) -> float:
        return sum(sum(ds) for ds in self.durations_ms.values())

    def signature(self) -> tuple[Any, ...]:
        """Everything counted except durations: equal for two orders that made the same requests."""
        return (
            sorted(self.invocations.items()),
            sorted(self.api.items()),
            sorted(self.calls.items()),
            self.transitions,
            self.rru,
            self.wru,
        )

    def cost_lines(self) -> list[tuple[str, float, str, float]]:
        """(line, quantity, price key, cost) for one order."""
        quantities = [
            ("DynamoDB read request units", self.rru, "dynamodb_rru"),
            ("DynamoDB write request units", self.wru, "dynamodb_wru"),
            ("Lambda requests", self.lambda_requests, "lambda_request"),
            ("Lambda duration, GB-s (arm64, 1024 MB, measured)", self.gb_seconds, "lambda_gb_s"),
            ("Step Functions Standard state transitions", self.transitions, "sfn_transition"),
            ("API Gateway HTTP API requests", self.api_requests, "http_api_request"),
            ("SQS requests", self.service_calls("sqs"), "sqs_request"),
            ("Secrets Manager API calls", self.service_calls("secretsmanager"), "secrets_call"),
            ("EventBridge events (one per PutEvents here)", self.service_calls("events"), "eventbridge_event"),
        ]
        return [(label, q, key, q * PRICES[key][0]) for label, q, key in quantities]

    def cost(self) -> float:
        return sum(c for *_, c in self.cost_lines())


class Meter:
    """Counts what the local cloud does for an order while `active`. Install once, after the cloud started."""

    def __init__(self) -> None:
        self.active = False
        self.usage = Usage()
        self._local = threading.local()  # the DynamoDB request tag, between our hook and botocore's, one thread
        # The function running: a context variable, not a thread-local, because FastAPI runs sync endpoints in a
        # worker thread (anyio copies the context into it); new threads (moto's Step Functions engine) start empty.
        self._function: contextvars.ContextVar[str | None] = contextvars.ContextVar("function", default=None)
        self._sequence = itertools.count(1)
        self._pending: dict[str, list[DynamoUse]] = {}
        self._lock = threading.Lock()
        self.tables: dict[str, str] = {}  # physical name -> logical id

    # ------------------------------------------------------------ control

    def start(self) -> None:
        self.usage = Usage()
        self.active = True

    def stop(self) -> Usage:
        self.active = False
        return self.usage

    def caller(self) -> str:
        function = self._function.get()
        if function:
            return function
        if threading.current_thread().name.startswith("sqs-"):
            return "Lambda event source mapping"
        return "Step Functions (service integration)"

    # ------------------------------------------------------------ hooks

    def count_logs(self, cloud: Any) -> None:
        """Put each handler's logger back at the level the template gives it (LOG_LEVEL), writing into a sink
        that counts the bytes (and shows nothing): the application logs CloudWatch Logs would ingest."""
        meter = self

        class Sink:
            def write(self, text: str) -> int:
                if meter.active:
                    with meter._lock:
                        meter.usage.log_bytes += len(text.encode())
                return len(text)

            def flush(self) -> None:
                pass

        for function in cloud.functions.values():
            logger = getattr(function.module, "logger", None)
            if logger is None or not hasattr(logger, "registered_handler"):
                continue
            logger.setLevel(function.environment.get("LOG_LEVEL", "INFO"))
            logger.registered_handler.setStream(Sink())

    def install(self, cloud: Any) -> None:
        from botocore.client import BaseClient
        from moto.dynamodb.models import dynamodb_backends
        from moto.dynamodb.models.dynamo_type import DynamoType
        from moto.dynamodb.responses import DynamoHandler

        from local_cloud import moto_fixes
        from local_cloud.functions import LocalFunction
        from local_cloud.gateway import Gateway

        self.tables = {cloud.physical_id(t): t for t in cloud.template.of_type("AWS::DynamoDB::Table")}
        meter = self

        original_invoke = LocalFunction.invoke

        def invoke(function: Any, event: Any) -> Any:
            if not meter.active:
                return original_invoke(function, event)
            token = meter._function.set(function.logical_id)
            started = time.perf_counter()
            try:
                return original_invoke(function, event)
            finally:
                elapsed = (time.perf_counter() - started) * 1000
                meter._function.reset(token)
                with meter._lock:
                    meter.usage.invocations[(function.logical_id, _event_kind(event))] += 1
                    meter.usage.durations_ms[(function.logical_id, _event_kind(event))].append(elapsed)

        original_handle = Gateway.handle

        def handle(gateway: Any, method: str, target: str, headers: Any, body: bytes, source_ip: str) -> Any:
            if meter.active:
                path = urlsplit(target).path
                if any(local.method == method and local.pattern.match(path) for local in gateway.local_routes):
                    shape = "/dev/payments/{payment_id}/{outcome}" if path.startswith("/dev/payments/") else path
                    label, billable = f"{method} {shape} (local only: the customer paying)", False
                else:
                    matched = gateway.match(method, path)
                    label, billable = (matched[0].route_key if matched else f"{method} (unrouted)"), True
                with meter._lock:
                    meter.usage.api[(label, billable)] += 1
            return original_handle(gateway, method, target, headers, body, source_ip)

        original_call = BaseClient._make_api_call

        def make_api_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
            if not meter.active or getattr(client, "_not_metered", False):
                return original_call(client, operation, params)
            service = client.meta.service_model.service_name
            caller = meter.caller()
            tag = None
            if service == "dynamodb":
                members = client.meta.service_model.operation_model(operation).input_shape.members
                if "ReturnConsumedCapacity" in members and "ReturnConsumedCapacity" not in params:
                    params = {**params, "ReturnConsumedCapacity": "TOTAL"}
                client.meta.events.register("before-call.dynamodb", _tag_request, unique_id="order-cost-tag")
                tag = f"{next(meter._sequence)}|{caller}"
                meter._local.tag = tag
            response: dict[str, Any] = {}
            try:
                response = original_call(client, operation, params)
                return response
            except Exception as error:
                response = getattr(error, "response", {}) or {}
                raise
            finally:
                meter._local.tag = None
                idle = (
                    service == "sqs"
                    and operation == "ReceiveMessage"
                    and caller == "Lambda event source mapping"
                    and not response.get("Messages")
                )
                with meter._lock:
                    if idle:
                        meter.usage.idle_polls += 1
                    else:
                        meter.usage.calls[(service, operation, caller)] += 1
                    if tag is not None:
                        uses = meter._pending.pop(tag, [])
                        reported = _consumed(response.get("ConsumedCapacity"))
                        if uses:
                            uses[0].moto_reported += reported
                        meter.usage.dynamodb.extend(uses)

        def _tag_request(params: dict[str, Any], **_: Any) -> None:
            tag = getattr(meter._local, "tag", None)
            if tag:
                params["headers"]["x-order-cost-tag"] = tag

        original_action = DynamoHandler.call_action

        def call_action(handler: Any) -> Any:
            tag = handler.headers.get("x-order-cost-tag") or handler.headers.get("X-Order-Cost-Tag")
            if not tag:
                return original_action(handler)
            with moto_fixes._dynamodb_lock:  # the same lock moto_fixes puts around every DynamoDB request
                operation = handler.get_endpoint_name(handler.headers) or "?"
                raw = handler.raw_body
                body = json.loads(raw.decode() if isinstance(raw, bytes) else (raw or "{}"))
                backend = dynamodb_backends[handler.current_account][handler.region]
                targets = _targets(operation, body, backend)
                before = [_stored(backend, t, DynamoType) for t in targets]
                response = original_action(handler)
                after = [_stored(backend, t, DynamoType) for t in targets]
            status, _, response_body = response
            uses = meter._units(
                tag.split("|", 1)[1],
                operation,
                body,
                targets,
                [item_size(i) for i in before],
                [item_size(i) for i in after],
                status,
                response_body,
            )
            by_table = {use.table: use for use in uses}
            for target, old, new in zip(targets, before, after, strict=True):
                if target.kind == "write" and status < 400:
                    index_wru = _index_write_units(backend.tables.get(target.table), old, new)
                    use = by_table.get(meter.tables.get(target.table, target.table))
                    if use is not None:  # billed as the table's write units
                        use.wru += index_wru
                        use.index_wru += index_wru
            with meter._lock:
                meter._pending[tag] = uses
            return response

        LocalFunction.invoke = invoke  # type: ignore[method-assign]
        Gateway.handle = handle  # type: ignore[method-assign]
        BaseClient._make_api_call = make_api_call  # type: ignore[method-assign]
        DynamoHandler.call_action = call_action  # type: ignore[method-assign]

    def _units(
        self,
        caller: str,
        operation: str,
        body: dict[str, Any],
        targets: list[Target],
        before: list[int],
        after: list[int],
        status: int,
        response_body: Any,
    ) -> list[DynamoUse]:
        text = response_body.decode() if isinstance(response_body, bytes) else str(response_body or "")
        charged = status < 400 or "ConditionalCheckFailed" in text or "TransactionCanceled" in text
        uses: dict[str, DynamoUse] = {}

        def use(table: str) -> DynamoUse:
            name = self.tables.get(table, table)
            return uses.setdefault(name, DynamoUse(caller, name, operation))

        if operation in ("Query", "Scan") and charged:
            # Units from the sizes of the items returned (exact without a ProjectionExpression or filter).
            items = json.loads(text).get("Items", []) if text else []
            size = sum(item_size(i) for i in items)
            factor = 1.0 if body.get("ConsistentRead") else 0.5
            entry = use(body.get("TableName", "?"))
            entry.rru += max(1, math.ceil(size / 4096)) * factor
            entry.approximate = bool(body.get("ProjectionExpression") or body.get("FilterExpression"))
        for target, size_before, size_after in zip(targets, before, after, strict=True):
            entry = use(target.table)
            if not charged:
                continue
            rru, wru = target_units(target, size_before, size_after)
            entry.rru += rru
            entry.wru += wru
        if not uses:
            use(body.get("TableName", "?"))
        return list(uses.values())


def _event_kind(event: Any) -> str:
    if isinstance(event, dict):
        if "action" in event:
            return str(event["action"])
        if "routeKey" in event:
            return str(event["routeKey"])
        if "Records" in event:
            source = (event["Records"] or [{}])[0].get("eventSource")
            return "DynamoDB stream batch" if source == "aws:dynamodb" else "SQS batch"
    return "other"


def _consumed(value: Any) -> float:
    entries = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
    return sum(float(e.get("CapacityUnits", 0)) for e in entries)


def _targets(operation: str, body: dict[str, Any], backend: Any) -> list[Target]:
    def key_of(table: str, item: dict[str, Any]) -> dict[str, Any]:
        found = backend.tables.get(table)
        if found is None:
            return {}
        names = [found.hash_key_attr] + ([found.range_key_attr] if found.range_key_attr else [])
        return {n: item[n] for n in names if n in item}

    table = body.get("TableName", "")
    consistent = bool(body.get("ConsistentRead"))
    if operation == "GetItem":
        return [Target(table, body.get("Key", {}), "read", consistent)]
    if operation == "PutItem":
        return [Target(table, key_of(table, body.get("Item", {})), "write")]
    if operation in ("UpdateItem", "DeleteItem"):
        return [Target(table, body.get("Key", {}), "write")]
    if operation == "BatchGetItem":
        return [
            Target(name, k, "read", bool(request.get("ConsistentRead")))
            for name, request in body.get("RequestItems", {}).items()
            for k in request.get("Keys", [])
        ]
    if operation == "BatchWriteItem":
        return [
            Target(
                name, key_of(name, w["PutRequest"]["Item"]) if "PutRequest" in w else w["DeleteRequest"]["Key"], "write"
            )
            for name, writes in body.get("RequestItems", {}).items()
            for w in writes
        ]
    if operation == "TransactWriteItems":
        targets = []
        for entry in body.get("TransactItems", []):
            for action, request in entry.items():
                item_key = key_of(request["TableName"], request["Item"]) if action == "Put" else request.get("Key", {})
                targets.append(Target(request["TableName"], item_key, "write", transactional=True))
        return targets
    if operation == "TransactGetItems":
        return [
            Target(e["Get"]["TableName"], e["Get"]["Key"], "read", transactional=True)
            for e in body.get("TransactItems", [])
            if "Get" in e
        ]
    return []


def _stored(backend: Any, target: Target, dynamo_type: Any) -> dict[str, Any] | None:
    """The item a target names as it is stored now (its attributes), or None."""
    table = backend.tables.get(target.table)
    if table is None or table.hash_key_attr not in target.key:
        return None
    range_key = target.key.get(table.range_key_attr) if table.range_key_attr else None
    try:
        item = table.get_item(
            dynamo_type(target.key[table.hash_key_attr]), dynamo_type(range_key) if range_key is not None else None
        )
    except Exception:  # noqa: BLE001 - a malformed key: DynamoDB refuses the request, nothing to size
        return None
    return None if item is None else dict(item.attrs)


INDEX_ENTRY_OVERHEAD = 100  # bytes DynamoDB adds to every index entry's size


def _index_write_units(table: Any, before: dict[str, Any] | None, after: dict[str, Any] | None) -> float:
    """What one item's write costs in its table's global secondary indexes (see (a) above)."""
    if table is None:
        return 0.0
    table_keys = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
    units = 0.0
    for index in table.global_indexes:
        old, new = (_index_entry(index, table_keys, item) for item in (before, after))
        if old == new:
            continue
        sizes = [INDEX_ENTRY_OVERHEAD + item_size(entry) for entry in (old, new) if entry is not None]
        same_key = old is not None and new is not None and all(old[k] == new[k] for k in index.schema_key_attrs)
        units += (
            max(1, math.ceil(max(sizes) / 1024))
            if same_key  # an update in place
            else sum(max(1, math.ceil(size / 1024)) for size in sizes)
        )  # a put, a delete, or both
    return float(units)


def _index_entry(index: Any, table_keys: list[str], item: dict[str, Any] | None) -> dict[str, Any] | None:
    if item is None or not all(k in item for k in index.schema_key_attrs):
        return None  # a sparse index holds only items with all its key attributes
    projection = index.projection.get("ProjectionType", "ALL")
    if projection == "ALL":
        return item
    names = {*index.schema_key_attrs, *table_keys, *(index.projection.get("NonKeyAttributes") or [])}
    return {name: value for name, value in item.items() if name in names}


# ---------------------------------------------------------------- scenarios


class Api:
    """A frontend's HTTP calls, one connection."""

    def __init__(self, url: str) -> None:
        address = urlsplit(url)
        self.connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)

    def call(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        self.connection.request(method, path, body=body, headers=headers or {})
        response = self.connection.getresponse()
        data = response.read()
        return response.status, (json.loads(data) if data else {})

    def checkout(self, cart_id: str) -> dict[str, Any]:
        status, order = self.call(
            "POST",
            "/checkout",
            checkout_body(cart_id),
            {"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex},
        )
        if status != 202:
            raise RuntimeError(f"POST /checkout answered {status}: {order}")
        return order

    def order(self, order_id: str) -> dict[str, Any]:
        status, order = self.call("GET", f"/orders/{order_id}")
        if status != 200:
            raise RuntimeError(f"GET /orders/{order_id} answered {status}: {order}")
        return order


@dataclass
class Scenario:
    name: str
    units: int  # stock of the scenario's product
    quantity: int  # in the cart
    payments: tuple[str, ...]  # what the shopper does, in order: succeed | fail (POST /dev/payments/{id}/...)
    final: str  # the order's expected last status
    late_payment: bool = False  # the payment is processing at the timeout and succeeds after the order expired
    operator: str | None = None  # what an operator does once it is paid: "refund" (a return, after delivery), "cancel"


STEADY = "delivered (steady state)"
SCENARIOS = [
    Scenario("delivered (first order, cold caches)", 5, 2, ("succeed",), "delivered"),
    Scenario("delivered (steady state)", 5, 2, ("succeed",), "delivered"),
    Scenario("declined, then paid", 5, 2, ("fail", "succeed"), "delivered"),
    Scenario("payment declined (3 attempts)", 5, 2, ("fail", "fail", "fail"), "payment_failed"),
    Scenario("out of stock", 1, 2, (), "rejected"),
    Scenario("expired (nobody pays)", 5, 2, (), "expired"),
    Scenario("refunded (paid after it expired)", 5, 2, (), "expired", late_payment=True),
    Scenario("refunded by an operator (one unit returned)", 5, 2, ("succeed",), "delivered", operator="refund"),
    Scenario("cancelled after payment", 5, 2, ("succeed",), "cancelled", operator="cancel"),
]


@dataclass
class Context:
    cloud: Any
    gateway: Any
    shop: Shop
    sfn: Any
    meter: Meter
    api: Api
    timeout: float
    logs: Any = None  # unmetered: reads the integration events' log group
    admin_token: str = ""  # an operator's access token (POST /dev/auth/token, fetched before any meter runs)


def run_scenario(ctx: Context, scenario: Scenario) -> tuple[Usage, str, str]:
    """(what the order used, how its execution ended, the order id)"""
    shop, api = ctx.shop, ctx.api
    sku = shop.product(scenario.units)
    cart_id = shop.cart(sku, scenario.quantity)
    ctx.meter.start()
    try:
        if scenario.final == "rejected":
            order_id = _checkout_past_the_fast_path(ctx, cart_id)
        else:
            order_id = api.checkout(cart_id)["id"]
        first = scenario.final if scenario.final == "rejected" else "awaiting_payment"
        _wait(shop, order_id, {first}, ctx.timeout)
        order = api.order(order_id)  # the frontend's read: the client_secret, or the rejection
        for outcome in scenario.payments:
            status, answer = api.call("POST", f"/dev/payments/{order['payment']['payment_id']}/{outcome}")
            if status != 200 or answer.get("webhook_status") != 200:
                raise RuntimeError(f"paying answered {status}: {answer}")
            if outcome == "fail" and scenario.final == "delivered":
                order = api.order(order_id)  # the shop shows the decline; the shopper tries again
        if scenario.late_payment:  # a bank debit: processing at the timeout and after the grace, then it succeeds
            ctx.cloud.payments.processing(order["payment"]["payment_id"])
        if scenario.operator == "cancel":
            _wait(shop, order_id, {"fulfilling"}, ctx.timeout)  # handed to the carrier: the cancel stops it
            _operator(ctx, "POST", f"/admin/orders/{order_id}/cancel", {"reason": "the customer asked"})
        if scenario.final == "delivered":
            _wait(shop, order_id, {"fulfilling"}, ctx.timeout)  # shipped by the fulfilment function
            carrier = ctx.cloud.carrier
            shipment_id = next(s["id"] for s in carrier.shipments.values() if s["reference"] == order_id)
            for _ in range(3):  # in_transit, out_for_delivery, delivered: three signed webhooks
                if carrier.advance(shipment_id) != 200:
                    raise RuntimeError(f"the carrier's tracking webhook for {order_id} was not accepted")
        if scenario.final != first:
            _wait(shop, order_id, {scenario.final}, ctx.timeout + 30)
        execution = _execution_done(ctx, order_id)
        if scenario.payments:
            order = api.order(order_id)  # the result page
        _wait_for_event(ctx, f"order.{scenario.final}", order_id)
        if scenario.operator == "refund":
            refund = _operator(
                ctx,
                "POST",
                f"/admin/orders/{order_id}/refunds",
                {"lines": [{"sku": sku, "quantity": 1}], "restock": True, "reason": "returned by the customer"},
            )
            _wait_for_event(ctx, "order.refunded", refund["id"])
        if scenario.operator == "cancel":
            _wait_for_event(ctx, "order.refunded", f"cancel-{order_id}")
        if scenario.late_payment:
            ctx.cloud.payments.succeed(order["payment"]["payment_id"])  # webhook -> refund in full, automatically
            refund_id = f"late-{order['payment']['payment_id']}"
            _wait_for_event(ctx, "order.refunded", refund_id)
        time.sleep(1.0)  # the streams' last records (stock movements) land in this order's count
    finally:
        usage = ctx.meter.stop()
    final = shop.orders([order_id])[order_id]["status"]
    if final != scenario.final:
        raise RuntimeError(f"{scenario.name}: order {order_id} ended {final}, not {scenario.final}")
    usage.states, usage.retries = _states_entered(ctx, execution["executionArn"])
    usage.transitions = len(usage.states) + usage.retries
    return usage, execution["status"], order_id


def _operator(ctx: Context, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """An operator's request to the admin API, with its token and a fresh Idempotency-Key."""
    status, answer = ctx.api.call(
        method,
        path,
        json.dumps(body).encode(),
        {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {ctx.admin_token}",
            "Idempotency-Key": uuid.uuid4().hex,
        },
    )
    if status not in (200, 201):
        raise RuntimeError(f"{method} {path} answered {status}: {answer}")
    return answer


def _checkout_past_the_fast_path(ctx: Context, cart_id: str) -> str:
    """A checkout the reservation rejects. Checkout itself refuses a cart current stock cannot fill (409, no order);
    an order is rejected only when another buyer takes the stock between the checkout's read and the reservation.
    That race is simulated by turning the checkout's sold-out check off for this one call: the same reads happen,
    they just find enough stock, as they would have a moment earlier."""
    service = ctx.cloud.functions["CheckoutFunction"].module.service
    service._refuse_sold_out = lambda skus: None  # an instance attribute shadows the method for this call
    try:
        return ctx.api.checkout(cart_id)["id"]
    finally:
        del service._refuse_sold_out


def one_more_get(ctx: Context, order_id: str) -> Usage:
    ctx.meter.start()
    try:
        ctx.api.order(order_id)
    finally:
        usage = ctx.meter.stop()
    return usage


def _wait(shop: Shop, order_id: str, statuses: set[str], timeout: float) -> None:
    order = shop.wait_until([order_id], statuses, timeout, poll=0.05).get(order_id)
    if order is None or order["status"] not in statuses:
        raise RuntimeError(f"order {order_id} did not reach {statuses} in {timeout:.0f} s: {order}")


def _wait_for_event(ctx: Context, event_type: str, key: str) -> None:
    """Until the integration event (of the order's last transition, or of a refund) is published: the streams
    caught up."""
    deadline = time.monotonic() + 30
    wanted = f'"{event_type}:{key}"'  # the event's event_id, as it appears in the logged event
    while not any(
        ctx.logs.filter_log_events(logGroupName=group, filterPattern=wanted)["events"]
        for group in ctx.cloud.event_log_groups
    ):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{event_type} for {key} was not published")
        time.sleep(0.1)


def _execution_done(ctx: Context, order_id: str) -> dict[str, Any]:
    arn = ctx.cloud.physical_id("OrderWorkflow").replace(":stateMachine:", ":execution:") + f":{order_id}"
    deadline = time.monotonic() + ctx.timeout + 30
    while (execution := ctx.sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        if time.monotonic() > deadline:
            raise RuntimeError(f"execution {order_id} still running")
        time.sleep(0.05)
    return execution


def _states_entered(ctx: Context, arn: str) -> tuple[list[str], int]:
    """The states the execution entered, in order, and how many task attempts were retries."""
    events: list[dict[str, Any]] = []
    token = None
    while True:
        paging = {"nextToken": token} if token else {}
        page = ctx.sfn.get_execution_history(executionArn=arn, maxResults=1000, **paging)
        events += page["events"]
        if not (token := page.get("nextToken")):
            break
    states = [
        e.get("stateEnteredEventDetails", {}).get("name", "?") for e in events if e["type"].endswith("StateEntered")
    ]
    scheduled = sum(e["type"] in ("TaskScheduled", "LambdaFunctionScheduled") for e in events)
    tasks_entered = sum(e["type"] == "TaskStateEntered" for e in events)
    return states, max(0, scheduled - tasks_entered)


# ---------------------------------------------------------------- reporting


def _money(value: float) -> str:
    return f"${value:.4f}" if value >= 0.0001 or value == 0 else f"${value:.6f}"


def _units(value: float) -> str:
    return f"{value:g}"


def print_counts(results: list[tuple[Scenario, Usage, str, str]], extra_get: Usage) -> None:
    columns = [s.name for s, *_ in results] + ["one more GET /orders/{id}"]
    usages = [u for _, u, *_ in results] + [extra_get]
    print("| per order | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))

    def row(label: str, values: list[Any]) -> None:
        print(f"| {label} | " + " | ".join(str(v) for v in values) + " |")

    row("**API Gateway requests** (billed)", [u.api_requests for u in usages])
    routes = sorted({r for u in usages for r in u.api})
    for route, billable in routes:
        row(f"· `{route}`" + ("" if billable else " (not billed)"), [u.api.get((route, billable), 0) for u in usages])
    row("**Lambda invocations**", [u.lambda_requests for u in usages])
    for function, kind in sorted({k for u in usages for k in u.invocations}):
        row(f"· {function}: {kind}", [u.invocations.get((function, kind), 0) for u in usages])
    row("**Step Functions state transitions**", [u.transitions for u in usages])
    row("· of which task retries", [u.retries for u in usages])
    row("**DynamoDB RRU** (computed from item sizes)", [_units(u.rru) for u in usages])
    row("**DynamoDB WRU** (computed from item sizes)", [_units(u.wru) for u in usages])
    row("· of which global secondary index writes", [_units(sum(d.index_wru for d in u.dynamodb)) for u in usages])
    row("DynamoDB requests", [u.service_calls("dynamodb") for u in usages])
    row(
        "DynamoDB units moto reported (constants: not used)",
        [_units(sum(d.moto_reported for d in u.dynamodb)) for u in usages],
    )
    row("**SQS requests**", [u.service_calls("sqs") for u in usages])
    row("**Secrets Manager calls**", [u.service_calls("secretsmanager") for u in usages])
    others = sorted({(s, o) for u in usages for s, o, _ in u.calls if s not in ("dynamodb", "sqs", "secretsmanager")})
    for service, operation in others:
        note = "(the Lambda invocations above)" if service == "lambda" else "(no per-request charge)"
        row(
            f"{service} {operation} {note}",
            [sum(n for (s, o, _), n in u.calls.items() if (s, o) == (service, operation)) for u in usages],
        )
    row("Lambda duration, sum of ms (in-process)", [f"{u.lambda_ms:.0f}" for u in usages])
    row("application log bytes (handlers' loggers, LOG_LEVEL INFO)", [u.log_bytes for u in usages])
    row("**cost per 1,000 orders** (list prices)", [_money(u.cost() * 1000) for u in usages])


def print_dynamodb(usage: Usage) -> None:
    print("| caller | table | operation | requests | RRU | WRU | of which index WRU |")
    print("|---|---|---|---:|---:|---:|---:|")
    grouped: dict[tuple[str, str, str], list[DynamoUse]] = defaultdict(list)
    for use in usage.dynamodb:
        grouped[(use.caller, use.table, use.operation)].append(use)
    for (caller, table, operation), uses in sorted(grouped.items()):
        requests = len(uses)  # one entry per request and table it touched
        approx = " (approx.)" if any(u.approximate for u in uses) else ""
        print(
            f"| {caller} | {table} | {operation}{approx} | {requests} | {_units(sum(u.rru for u in uses))} | "
            f"{_units(sum(u.wru for u in uses))} | {_units(sum(u.index_wru for u in uses))} |"
        )
    print(
        f"| **total** | | | {usage.service_calls('dynamodb')} | {_units(usage.rru)} | {_units(usage.wru)} | "
        f"{_units(sum(u.index_wru for u in usage.dynamodb))} |"
    )


def print_cost(usage: Usage) -> None:
    print("| line | quantity per order | unit price (us-east-1 list) | per order | per 1,000 orders | share |")
    print("|---|---:|---|---:|---:|---:|")
    total = usage.cost()
    for label, quantity, key, cost in usage.cost_lines():
        shown = PRICES[key][1]
        q = f"{quantity:.4f}" if key == "lambda_gb_s" else _units(quantity)
        print(f"| {label} | {q} | {shown} | {_money(cost)} | {_money(cost * 1000)} | {cost / total:.0%} |")
    print(f"| **total** | | | **{_money(total)}** | **{_money(total * 1000)}** | 100% |")
    logs = usage.log_bytes / 1e9 * CLOUDWATCH_LOGS_PER_GB
    print(
        f"\nNot in the total: CloudWatch Logs ingestion of the handlers' own log lines, {usage.log_bytes} bytes "
        f"per order, at ${CLOUDWATCH_LOGS_PER_GB:.2f} per GB: {_money(logs)} per order, {_money(logs * 1000)} per "
        "1,000 orders (Lambda's own START/END/REPORT lines come on top; not emulated here)."
    )
    print("\nPrices: " + "; ".join(f"{what}: {shown}" for _, shown, what in PRICES.values()) + ".")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--payment-timeout",
        type=int,
        default=5,
        help="PaymentTimeoutSeconds for this run's cloud: how long the expired scenario waits",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=5,
        help="steady-state paid orders; the one with the median Lambda time is reported",
    )
    args = parser.parse_args(argv)

    import boto3

    print(
        f"Cost of one order on the local cloud (Python {sys.version.split()[0]}, {os.cpu_count()} CPUs)\n", flush=True
    )
    started = time.perf_counter()
    cloud, gateway = start_cloud(
        {"PaymentTimeoutSeconds": str(args.payment_timeout), "PaymentProcessingGraceSeconds": str(args.payment_timeout)}
    )
    try:
        meter = Meter()
        meter.install(cloud)
        meter.count_logs(cloud)

        def unmetered(service: str) -> Any:
            client = boto3.session.Session().client(service, region_name=cloud.region, endpoint_url=cloud.endpoint_url)
            client._not_metered = True
            return client

        api = Api(gateway.url)
        status, token = api.call(
            "POST", "/dev/auth/token", json.dumps({"groups": ["admin"]}).encode(), {"Content-Type": "application/json"}
        )
        if status != 200:
            raise RuntimeError(f"POST /dev/auth/token answered {status}: {token}")
        ctx = Context(
            cloud,
            gateway,
            Shop(cloud, unmetered("dynamodb")),
            unmetered("stepfunctions"),
            meter,
            api,
            timeout=30,
            logs=unmetered("logs"),
            admin_token=token["access_token"],
        )
        print(
            f"Local cloud up (PaymentTimeoutSeconds={args.payment_timeout}), gateway on {gateway.url}: "
            f"{time.perf_counter() - started:.1f} s\n",
            flush=True,
        )
        results = []
        steady: list[tuple[Usage, str, str]] = []
        for scenario in SCENARIOS:
            runs = [run_scenario(ctx, scenario) for _ in range(args.repeat if scenario.name == STEADY else 1)]
            if scenario.name == STEADY:
                steady = sorted(runs, key=lambda run: run[0].lambda_ms)
                runs = [steady[len(steady) // 2]]
            usage, status, order_id = runs[0]
            results.append((scenario, usage, status, order_id))
            print(f"- {scenario.name}: execution {status}, states entered: {' → '.join(usage.states)}", flush=True)
            if scenario.name == STEADY:
                same = all(run[0].signature() == usage.signature() for run in steady)
                print(
                    f"  {len(steady)} such orders, every count identical: {'yes' if same else 'NO'}; Lambda time "
                    f"per order (in-process) min {steady[0][0].lambda_ms:.0f} ms, median {usage.lambda_ms:.0f} ms, "
                    f"max {steady[-1][0].lambda_ms:.0f} ms (the median order is reported)",
                    flush=True,
                )
        paid = next(u for s, u, _, _ in results if s.name == STEADY)
        extra_get = one_more_get(ctx, results[-1][3])

        print("\nCounts per order (each scenario is one order, measured alone)\n")
        print_counts(results, extra_get)
        print("\nDynamoDB per request, paid (steady state)\n")
        print_dynamodb(paid)
        print("\nLambda duration per invocation, paid (steady state, the median order), measured in-process\n")
        print("| function: event | invocations | ms |")
        print("|---|---:|---:|")
        for (function, kind), durations in sorted(paid.durations_ms.items()):
            print(f"| {function}: {kind} | {len(durations)} | {' + '.join(f'{d:.0f}' for d in durations)} |")
        print(
            f"\nCost of one paid order (steady state) at us-east-1 list prices as known on {PRICES_AS_OF} "
            "(no free tier; verify before relying)\n"
        )
        print_cost(paid)
        print(f"\nWhole run {time.perf_counter() - started:.0f} s")
    finally:
        gateway.stop()
        cloud.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
