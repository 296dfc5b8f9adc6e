"""Where moto differs from AWS in ways that would make local results wrong or the local cloud slow, and the
fix for each. `apply()` installs them all; LocalCloud.start() calls it.

1. DynamoDB is not thread-safe in moto. Under concurrent TransactWriteItems it let conditional decrements
   both succeed (measured: 102-104 successful reservations of 100 units) and returned 500s. Real DynamoDB
   serialises conflicting writes, so moto's DynamoDB request handling is serialised here. The lock is
   re-entrant because moto can handle a DynamoDB call while handling another (Step Functions' dynamodb:*
   tasks); one lock over the whole server deadlocks there.
   tests/integration/test_local_cloud.py::test_concurrent_conditional_writes_never_oversell fails without
   it: rerun it with LOCAL_CLOUD_UNSAFE_DYNAMODB=1 to see the flaw.
2. moto's TransactWriteItems deep-copies every table a transaction touches, to roll back on failure: with a
   few hundred items that is ~10 s per 50-line reservation. Here only the items the transaction can write
   are saved and restored, which rolls back the same way (the DynamoDB lock makes it atomic); so are the
   tables' stream records, or a cancelled transaction would leave records of writes that never happened.
3. moto's Step Functions engine parses the ASL definition with a pure-Python ANTLR parser on every
   execution start (~0.5 s). The parse tree is cached per definition; each execution still gets freshly
   built evaluation components, so no state is shared between executions.
4. moto's server lists its own package directory on every request to route it (~20 ms); the list is cached.
5. moto's Step Functions engine builds a new boto3 client for every task it runs (~100 ms each); clients are
   thread-safe, so one per service and region is kept.
6. moto's SESv2 SendEmail keeps only one part of a message with a text and an HTML part (the HTML), and neither
   its message tags nor when it was sent. All of them are kept here, so that GET /dev/emails shows what a mail
   client would, with the order it belongs to (the `order_id` tag).
7. moto's S3 stores any browser-form (POST) upload, whatever its signed policy says. Here a POST that breaks its
   policy (expired; a field, the key or the file's size outside the conditions) is refused as S3 refuses it, so
   the product images' upload limits (5 MB, the declared content type) hold locally too.
8. moto's Cognito has no RevokeToken (it answers 500), which the admin page calls when an operator signs out, so
   that the refresh token in the tab cannot be used again. Here it revokes the refresh token as Cognito does: a
   later REFRESH_TOKEN_AUTH with it is refused (NotAuthorizedException).
9. moto writes every response through a generic serializer that walks botocore's output shapes member by member
   (moto.core.serialize): a quarter of the test suite's CPU went to DynamoDB's item responses. Their results are
   already DynamoDB's wire JSON (attribute values as {"S": ...}, {"N": "..."}), so the item operations' results
   are written with json.dumps, as DynamoDB's JSON protocol does (and DynamoDB Streams' GetRecords, which the
   local event source mappings call five times a second); everything else, errors included, still goes
   through moto's serializer. tests/unit/test_moto_fixes.py compares the two on every item operation.
10. Lambda reads a DynamoDB stream about four times a second; the local stream pollers would have to ask moto as
   often, and every ask is an HTTP request both sides parse. Instead moto's stream shards say when they are
   written (`stream_writes`, per table), and an idle poller sleeps until its table's stream is written (at most
   a second): records reach their function sooner, and an idle local cloud costs next to nothing.
11. The functions run in the process that runs moto, yet every SDK call they make went out as an HTTP request to
   moto's server on loopback and back: a socket, a thread and two HTTP parsers per call, about a fifth of the
   suite's CPU. A call from this process to one of its own moto servers is now answered in process (`serve_in_process`):
   botocore builds, signs and sends the request as always, and at the moment of sending, moto's own hook for that
   (the one `mock_aws` uses) hands it to the server's routing (the service from the signature, the route from
   the path) and its response back to botocore to parse. Browsers, the AWS CLI and other processes still use the
   server. tests/integration/test_in_process_sdk.py checks that in-process and HTTP answers are the same.
12. moto's Query reads its table by listing every item of the table, sorted (Python comparisons of attribute
   values), and then keeping the partition asked for: a query's cost grew with the whole table, and the shared
   single table of a test session holds thousands of items. Here a query of the table reads only its partition
   (in the same sort-key order), and a query of an index gets the table's items unsorted, because moto then sorts
   them by the index's keys and the table's (a total order) anyway. Scans are untouched.
   tests/unit/test_moto_fixes.py runs the same queries with and without this and requires the same pages.
"""

from __future__ import annotations

import base64
import calendar
import copy
import functools
import io
import json
import logging
import os
import sys
import threading
import types
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import unquote, urlsplit

_dynamodb_lock = threading.RLock()


def apply() -> None:
    serialize_dynamodb()
    roll_back_transactions_item_by_item()
    cache_state_machine_parsing()
    cache_moto_module_list()
    reuse_step_functions_sdk_clients()
    keep_whole_sesv2_emails()
    enforce_s3_post_policies()
    revoke_cognito_refresh_tokens()
    write_dynamodb_item_responses_as_json()
    announce_stream_writes()
    answer_own_requests_in_process()
    query_only_what_can_match()


def _once(target: Any, name: str, replacement: Any) -> None:
    if not getattr(getattr(target, name), "_local_cloud", False):
        replacement._local_cloud = True
        setattr(target, name, replacement)


def serialize_dynamodb() -> None:
    if os.environ.get("LOCAL_CLOUD_UNSAFE_DYNAMODB") == "1":
        return
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action

    @functools.wraps(original)
    def call_action(self: Any) -> Any:
        with _dynamodb_lock:
            return original(self)

    _once(DynamoHandler, "call_action", call_action)


# DynamoDB's item (data-plane) operations: their results are plain dicts of wire JSON (fix 9).
DYNAMODB_ITEM_OPERATIONS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
        "GetRecords",  # DynamoDB Streams': the stream pollers call it five times a second
    }
)


def write_dynamodb_item_responses_as_json() -> None:
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    for handler_class in (DynamoHandler, DynamoDBStreamsHandler):
        original = handler_class.serialized

        def serialized(self: Any, action_result: Any, original: Any = original) -> Any:
            return dynamodb_item_response(self, action_result) or original(self, action_result)

        serialized.__wrapped__ = original  # type: ignore[attr-defined]
        _once(handler_class, "serialized", serialized)


def dynamodb_item_response(handler: Any, action_result: Any) -> tuple[int, dict[str, str], str] | None:
    """An item operation's response as DynamoDB writes it, or None for what moto's serializer must write."""
    result = action_result.result
    if not isinstance(result, dict) or handler._get_action() not in DYNAMODB_ITEM_OPERATIONS:
        return None
    body = json.dumps(_without_none(result), separators=(",", ":"), default=_wire_value)
    return 200, {"Content-Type": "application/x-amz-json-1.0", **handler.response_headers}, body


def _without_none(value: Any) -> Any:
    """moto's serializer leaves out members whose value is None; so does this."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def _wire_value(value: Any) -> Any:
    """What the JSON protocol makes of the values JSON has no type for: blobs in base64, times in epoch seconds."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):  # as moto's serializer: naive is UTC, truncated to milliseconds
        return calendar.timegm(value.utctimetuple()) + value.microsecond // 1000 / 1000
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"no JSON for {type(value).__name__}")


class WriteSignal:
    """A count of writes to wait on: a waiter notes the count, looks for work, and if there was none sleeps until
    the count moves (or a timeout). No write between the look and the sleep is missed."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._count = 0

    def count(self) -> int:
        with self._condition:
            return self._count

    def notify(self) -> None:
        with self._condition:
            self._count += 1
            self._condition.notify_all()

    def wait_past(self, count: int, timeout: float) -> None:
        with self._condition:
            self._condition.wait_for(lambda: self._count != count, timeout)


class StreamWrites:
    """Fix 10: one WriteSignal per table whose stream moto writes in this process, so that a write wakes only the
    pollers of that table's stream."""

    def __init__(self) -> None:
        self._signals: dict[str, WriteSignal] = {}
        self._lock = threading.Lock()

    def of(self, table_arn: str) -> WriteSignal:
        with self._lock:
            return self._signals.setdefault(table_arn, WriteSignal())


stream_writes = StreamWrites()


def announce_stream_writes() -> None:
    from moto.dynamodb.models.table import StreamShard

    original = StreamShard.add

    @functools.wraps(original)
    def add(self: Any, old: Any, new: Any) -> None:
        original(self, old, new)
        stream_writes.of(self.table.table_arn).notify()

    _once(StreamShard, "add", add)


def roll_back_transactions_item_by_item() -> None:
    import moto.dynamodb.models as models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    original = models.DynamoDBBackend.transact_write_items
    tables_as_they_are = types.SimpleNamespace(
        deepcopy=lambda obj, memo=None: obj if isinstance(obj, Table) else copy.deepcopy(obj, memo)
    )

    @functools.wraps(original)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        saved = []  # (table, hash, range, item before or None) for every item the transaction may write
        for entry in transact_items:
            for op_type, op in entry.items():
                table = self.tables.get(op.get("TableName")) if isinstance(op, dict) else None
                item_key = (op.get("Item") if op_type == "Put" else op.get("Key")) if table else None
                if not item_key or table.hash_key_attr not in item_key:
                    continue  # moto's own validation will answer this request
                hash_value = DynamoType(item_key[table.hash_key_attr])
                range_value = DynamoType(item_key[table.range_key_attr]) if table.range_key_attr in item_key else None
                saved.append((table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value))))
        stream_lengths = {table: len(table.stream_shard.items) for table, *_ in saved if table.stream_shard}
        models.copy = tables_as_they_are  # moto's whole-table backup becomes the table itself: a no-op
        try:
            return original(self, transact_items)
        except Exception:
            for table, hash_value, range_value, item in reversed(saved):
                if range_value is None:
                    if item is None:
                        table.items.pop(hash_value, None)
                    else:
                        table.items[hash_value] = item
                elif item is None:
                    table.items.get(hash_value, {}).pop(range_value, None)
                else:
                    table.items.setdefault(hash_value, {})[range_value] = item
            for table, length in stream_lengths.items():
                del table.stream_shard.items[length:]
            raise
        finally:
            models.copy = copy

    if os.environ.get("LOCAL_CLOUD_UNSAFE_DYNAMODB") != "1":  # item-level rollback relies on the lock
        _once(models.DynamoDBBackend, "transact_write_items", transact_write_items)


def cache_state_machine_parsing() -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    original = AmazonStateLanguageParser.parse
    trees: dict[str, Any] = {}

    def parse(definition: str) -> tuple[Any, Any]:
        tree = trees.get(definition)
        if tree is None:
            program, tree = original(definition)
            trees[definition] = tree
            return program, tree
        return Preprocessor().visit(tree), tree  # fresh components from the cached tree

    _once(AmazonStateLanguageParser, "parse", staticmethod(parse))


def cache_moto_module_list() -> None:
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    _once(backends, "list_of_moto_modules", lambda: modules)


def reuse_step_functions_sdk_clients() -> None:
    import moto.stepfunctions.parser.asl.parse.preprocessor  # noqa: F401 - loads every module that builds clients
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for
    if getattr(original, "_local_cloud", False):
        return
    clients: dict[tuple[str, str, str | None], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        key = (region, service, os.environ.get("MOTO_PORT"))  # a client is bound to one local cloud's port
        with lock:
            if key not in clients:
                clients[key] = original(region, service, state_credentials)
            return clients[key]

    boto_client_for._local_cloud = True  # type: ignore[attr-defined]
    for name, module in list(sys.modules.items()):  # modules hold their own reference: replace each
        if name.startswith("moto.stepfunctions") and getattr(module, "boto_client_for", None) is original:
            module.boto_client_for = boto_client_for  # type: ignore[attr-defined]


def keep_whole_sesv2_emails() -> None:
    from moto.sesv2.responses import SESV2Response

    original = SESV2Response.send_email

    @functools.wraps(original)
    def send_email(self: Any) -> str:
        answer = original(self)
        request = json.loads(self.body)
        simple = request.get("Content", {}).get("Simple")
        if simple is not None:
            message_id = json.loads(answer)["MessageId"]
            sent = self.sesv2_backend.core_backend.sent_messages
            message = next(m for m in reversed(sent) if m.id == message_id)
            message.text = simple["Body"].get("Text", {}).get("Data")
            message.html = simple["Body"].get("Html", {}).get("Data")
            message.tags = {tag["Name"]: tag["Value"] for tag in request.get("EmailTags", [])}
            message.configuration_set = request.get("ConfigurationSetName")  # whose stack sent it
            message.sent_at = datetime.now(UTC).isoformat()
        return answer

    _once(SESV2Response, "send_email", send_email)


def enforce_s3_post_policies() -> None:
    """S3 refuses a browser-form (POST) upload that breaks its signed policy: expired, or a field or the file's
    size outside the policy's conditions. moto stores any POST; here it is refused as S3 refuses it (the policy's
    signature is not checked: the local cloud's credentials are not secret anyway)."""
    from moto.s3.responses import S3Response

    original = S3Response._bucket_response_post

    @functools.wraps(original)
    def bucket_response_post(self: Any, request: Any, bucket_name: str) -> Any:
        fields = {name: values[0] for name, values in self.querystring.items() if values}
        if "policy" in fields and not self.is_delete_keys():
            refusal = _post_policy_refusal(fields, bucket_name, len(self.body or b""))
            if refusal is not None:
                return refusal
        return original(self, request, bucket_name)

    _once(S3Response, "_bucket_response_post", bucket_response_post)


def _post_policy_refusal(fields: dict[str, str], bucket: str, size: int) -> tuple[int, dict[str, str], str] | None:
    def error(status: int, code: str, message: str) -> tuple[int, dict[str, str], str]:
        return (
            status,
            {"Content-Type": "application/xml"},
            (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'),
        )

    try:
        policy = json.loads(base64.b64decode(fields["policy"]))
        expires = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError):
        return error(400, "InvalidPolicyDocument", "Invalid Policy: Invalid JSON.")
    if expires < datetime.now(UTC):
        return error(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
    values = {name.lower(): value for name, value in fields.items()} | {"bucket": bucket}
    for condition in policy.get("conditions", []):
        if isinstance(condition, dict):
            ((name, expected),) = condition.items()
            operator, name = "eq", f"${name}"
        else:
            operator, name, expected = condition
        if operator == "content-length-range":
            low, high = int(name), int(expected)
            if size > high:
                return error(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
            if size < low:
                return error(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size")
            continue
        actual = values.get(name.removeprefix("$").lower())
        if (operator == "eq" and actual != expected) or (
            operator == "starts-with" and not str(actual or "").startswith(expected)
        ):
            return error(
                403,
                "AccessDenied",
                f'Invalid according to Policy: Policy Condition failed: ["{operator}", "{name}", "{expected}"]',
            )
    return None


def revoke_cognito_refresh_tokens() -> None:
    from moto.cognitoidp.exceptions import NotAuthorizedError
    from moto.cognitoidp.responses import CognitoIdpResponse
    from moto.core.responses import EmptyResult

    def revoke_token(self: Any) -> Any:
        token, client_id = self._get_param("Token"), self._get_param("ClientId")
        for pool in self.backend.user_pools.values():
            if client_id in pool.clients and pool.refresh_tokens.get(token) is not None:
                if pool.refresh_tokens[token][0] != client_id:
                    raise NotAuthorizedError("The token was not issued to this client.")
                pool.refresh_tokens[token] = None  # what moto's sign-out does to a user's refresh tokens
        return EmptyResult()  # Cognito answers the same for a token it no longer knows

    if not hasattr(CognitoIdpResponse, "revoke_token"):  # a moto that implements it keeps its own
        CognitoIdpResponse.revoke_token = revoke_token


# Fix 11: "host:port" of the moto servers this process runs, which its own SDK calls reach without HTTP.
_in_process_hosts: set[str] = set()


def serve_in_process(port: int) -> None:
    """SDK calls from this process to the moto server on `port` are answered in process from now on."""
    _in_process_hosts.update({f"127.0.0.1:{port}", f"localhost:{port}"})


def stop_serving_in_process(port: int) -> None:
    _in_process_hosts.difference_update({f"127.0.0.1:{port}", f"localhost:{port}"})


def answer_own_requests_in_process() -> None:
    from moto.core.botocore_stubber import BotocoreStubber

    original = BotocoreStubber.__call__

    @functools.wraps(original)
    def send(self: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        if urlsplit(request.url).netloc in _in_process_hosts:
            return _InProcessServer.instance().answer(request)
        return original(self, event_name, request, **kwargs)  # mock_aws's own behaviour

    _once(BotocoreStubber, "__call__", send)


class _InProcessServer:
    """What moto's server does with a request, without the HTTP: it finds the service as the server does (from the
    SigV4 credential scope, or the target or path of an unsigned call), the route in that service's paths as its
    Flask app does, and calls the same handler with the same URL."""

    _instance: _InProcessServer | None = None
    _lock = threading.Lock()

    @classmethod
    def instance(cls) -> _InProcessServer:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication

        self._dispatcher = DomainDispatcherApplication(create_app=None)  # type: ignore[arg-type]
        self._routes: dict[str, Any] = {}  # service -> (werkzeug Map of its paths, handlers by endpoint)
        self._routes_lock = threading.Lock()
        # host -> service: moto's lookup tries its URL patterns one by one (0.3-0.7 ms a request); few hosts recur
        self._services: dict[str, str | None] = {}

    def answer(self, request: Any) -> Any:
        from botocore.awsrequest import AWSResponse
        from moto.core.botocore_stubber import MockRawResponse

        status, headers, body = self._respond(request)
        return AWSResponse(request.url, status, headers, MockRawResponse(body))

    def _respond(self, request: Any) -> tuple[int, dict[str, Any], Any]:
        from botocore.exceptions import ClientError
        from moto.core.exceptions import HTTPException
        from moto.core.request import normalize_request
        from werkzeug.exceptions import HTTPException as RoutingException

        url = urlsplit(request.url)
        path = unquote(url.path) or "/"
        try:
            handler = self._route(self._service(request, url.netloc, path), path, request.method)
        except RoutingException as refusal:  # as moto's Flask app answers a path or method it has no route for
            return refusal.code or 404, {}, refusal.description or ""
        except LookupError as unknown:
            return 404, {}, str(unknown)
        normalized = normalize_request(request)
        try:
            return handler(normalized, normalized.raw_url, normalized.headers)  # type: ignore[no-any-return]
        except HTTPException as error:  # moto's errors: what its server writes for them
            return error.code, error.get_headers(), error.get_body()
        except ClientError as error:  # a call moto makes to another of its services failed: its server says 400
            return 400, {}, error.response["Error"]["Message"]
        except Exception:  # a moto bug: the server answers 500 and logs it, and so does this
            logging.getLogger("local_cloud").exception("moto failed on %s %s", request.method, request.url)
            return 500, {}, "Internal Server Error"

    def _service(self, request: Any, netloc: str, path: str) -> str:
        headers = request.headers
        body = request.body or b""
        if hasattr(body, "read"):  # a streamed upload: read it once, give botocore's request the bytes
            body = request.body = body.read()
        environ = {
            "PATH_INFO": path,
            "HTTP_HOST": netloc,
            "CONTENT_TYPE": _text(headers.get("Content-Type", "")),
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body if isinstance(body, bytes) else body.encode()),
        }
        for header, key in (("Authorization", "HTTP_AUTHORIZATION"), ("X-Amz-Target", "HTTP_X_AMZ_TARGET")):
            if header in headers:
                environ[key] = _text(headers[header])
        host = self._dispatcher.infer_service_region_host(environ, path) or "s3.us-east-1.amazonaws.com"
        if host not in self._services:
            self._services[host] = self._dispatcher.get_backend_for_host(host)
        service = self._services[host]
        if service is None:
            raise LookupError(f"no moto service for {host}")
        return str(service)

    def _route(self, service: str, path: str, method: str) -> Any:
        with self._routes_lock:
            if service not in self._routes:
                self._routes[service] = self._routes_of(service)
        url_map, handlers = self._routes[service]
        endpoint, _ = url_map.bind("localhost").match(path, method)
        return handlers[endpoint]

    @staticmethod
    def _routes_of(service: str) -> tuple[Any, list[Any]]:
        """The service's paths as moto's Flask app routes them (moto.moto_server.werkzeug_app.create_backend_app)."""
        import moto.backends as backends
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.core.base_backend import BackendDict
        from moto.moto_server.utilities import RegexConverter
        from moto.moto_server.werkzeug_app import HTTP_METHODS
        from werkzeug.routing import Map, Rule

        backend_dict = backends.get_backend(service)  # type: ignore[call-overload]
        if isinstance(backend_dict, BackendDict):
            regions = backend_dict[DEFAULT_ACCOUNT_ID]
            backend = regions["us-east-1"] if "us-east-1" in regions else regions["aws"]
        else:
            backend = backend_dict["global"]
        url_map = Map(converters={"regex": RegexConverter})
        handlers = []
        for url_path, handler in backend.flask_paths.items():
            if url_path:
                url_map.add(Rule(url_path, endpoint=len(handlers), methods=HTTP_METHODS, strict_slashes=False))
                handlers.append(handler)
        return url_map, handlers


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def query_only_what_can_match() -> None:
    """Fix 12: `Table.all_items`, called by `Table.query`, lists only what the query can match."""
    from moto.dynamodb.models.table import Table

    original_query, original_all_items = Table.query, Table.all_items
    querying = threading.local()  # the table being queried in this thread, and the partition (None: an index)

    @functools.wraps(original_query)
    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs["index_name"] if "index_name" in kwargs else (args[6] if len(args) > 6 else None)
        querying.scope = (self, None if index_name else hash_key)
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            querying.scope = None

    @functools.wraps(original_all_items)
    def all_items(self: Any) -> Any:
        table, hash_key = getattr(querying, "scope", None) or (None, None)
        if table is not self:
            return original_all_items(self)
        if hash_key is None:  # an index query: moto sorts what it keeps by the index's and the table's keys
            if not self.range_key_attr:
                return list(self.items.values())
            return [item for partition in self.items.values() for item in partition.values()]
        partition = self.items.get(hash_key)
        if partition is None:
            return []
        if not self.range_key_attr:
            return [partition]
        return sorted(partition.values(), key=lambda item: item.range_key)

    _once(Table, "query", query)
    _once(Table, "all_items", all_items)
