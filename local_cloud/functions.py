"""The template's Lambda functions, run in-process: the real handler modules with the template's environment.

Every way a function is invoked locally goes through `LocalFunction.invoke`:
  - the API Gateway emulation (gateway.py) for HTTP routes;
  - moto's Lambda `Invoke`, which Step Functions tasks and direct `lambda.invoke` calls reach
    (`install_lambda_hook` replaces moto's echoing backend with a lookup of the real handler);
  - the SQS and DynamoDB stream pollers below, which stand in for Lambda's event source mappings.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from local_cloud.moto_fixes import stream_writes

log = logging.getLogger("local_cloud")

# Imports run with the function's environment applied to os.environ: serialise them.
_import_lock = threading.Lock()
# moto's Lambda backend is patched once per process; functions register here by name and ARN.
_registry: dict[str, LocalFunction] = {}


@dataclass
class LambdaContext:
    """The attributes of the Lambda runtime's context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds
        self.log_group_name = f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._deadline - time.monotonic()) * 1000), 0)


class FunctionError(Exception):
    """A handler raised: carries the payload Lambda would return with `X-Amz-Function-Error: Unhandled`."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.payload = {
            "errorType": type(error).__name__,
            "errorMessage": str(error),
            "stackTrace": traceback.format_exception(error)[-5:],
        }


@dataclass
class LocalFunction:
    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    timeout: int
    memory: int
    _entry: Callable[[Any, Any], Any] | None = field(default=None, repr=False)
    module: ModuleType | None = field(default=None, repr=False)

    def load(self) -> None:
        """Import the handler module once, as Lambda's init phase does, with the function's environment."""
        module_path, attribute = self.handler.rsplit(".", 1)
        source = self.code_dir / (module_path.replace(".", "/") + ".py")
        module_name = f"local_cloud.loaded.{self.name}"
        with _import_lock:
            saved = {k: os.environ.get(k) for k in self.environment}
            os.environ.update(self.environment)
            try:
                spec = importlib.util.spec_from_file_location(module_name, source)
                if spec is None or spec.loader is None:
                    raise ImportError(f"cannot load {source}")
                module = importlib.util.module_from_spec(spec)
                sys.modules[module_name] = module
                spec.loader.exec_module(module)
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
        self.module = module
        self._entry = getattr(module, attribute)

    def invoke(self, event: Any, request_id: str | None = None) -> Any:
        """Run the handler; raises FunctionError when it raises, as the Lambda service reports it."""
        if self._entry is None:
            self.load()
        assert self._entry is not None
        context = LambdaContext(self.name, self.arn, self.memory, self.timeout)
        if request_id:
            context.aws_request_id = request_id
        started = time.monotonic()
        try:
            with _event_loop():
                return self._entry(event, context)
        except Exception as exc:
            log.warning("%s raised %s: %s", self.logical_id, type(exc).__name__, exc)
            raise FunctionError(exc) from exc
        finally:
            elapsed = time.monotonic() - started
            if elapsed > self.timeout:
                log.warning(
                    "%s ran %.1fs, over its %ss timeout (Lambda would have stopped it)",
                    self.logical_id,
                    elapsed,
                    self.timeout,
                )


@contextlib.contextmanager
def _event_loop() -> Iterator[None]:
    """Lambda runs handlers on the main thread, where asyncio.get_event_loop() works (Mangum relies on it);
    the local cloud runs them on worker threads, so give the thread a loop for the call and close it after."""
    try:
        asyncio.get_event_loop()
    except RuntimeError:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            yield
        finally:
            asyncio.set_event_loop(None)
            loop.close()
    else:
        yield


def register(function: LocalFunction) -> None:
    _registry[function.name] = function
    _registry[function.arn] = function


def lookup(name_or_arn: str) -> LocalFunction | None:
    if name_or_arn in _registry:
        return _registry[name_or_arn]
    # arn:aws:lambda:region:account:function:name[:qualifier]
    parts = name_or_arn.split(":")
    return _registry.get(parts[6]) if len(parts) >= 7 else None


def install_lambda_hook() -> None:
    """Make moto's Docker-free Lambda backend run the real handler instead of echoing the payload."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    if getattr(LambdaSimpleBackend.invoke, "_local_cloud", False):
        return

    def invoke(
        self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: dict[str, str]
    ) -> bytes | None:
        function = lookup(function_name)
        if function is None:
            return None  # moto answers 404 ResourceNotFound
        event = json.loads(body) if body else {}
        if headers.get("X-Amz-Invocation-Type") == "Event":
            threading.Thread(target=_invoke_quietly, args=(function, event), daemon=True).start()
            return b""
        try:
            result = function.invoke(event)
        except FunctionError as error:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(error.payload).encode()
        return json.dumps(result).encode()

    invoke._local_cloud = True  # type: ignore[attr-defined]
    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]


def _invoke_quietly(function: LocalFunction, event: Any) -> None:
    with contextlib.suppress(FunctionError):  # logged by invoke; asynchronous invocations have no caller to tell
        function.invoke(event)


class QueuePoller:
    """Lambda's SQS event source mapping: batches, the batching window, partial batch failures, visibility timeout,
    DLQ redrive.

    A batch is delivered when it is full or when the mapping's batching window has passed since its first message
    (MaximumBatchingWindowInSeconds; 0: at once). Messages a batch does not report as failed are deleted; failed
    ones (or the whole batch when the handler raises) stay on the queue, come back after the visibility timeout,
    and move to the dead-letter queue once SQS has delivered them maxReceiveCount times (moto's SQS does the
    redrive).
    """

    def __init__(
        self,
        sqs: Any,
        function: LocalFunction,
        queue_url: str,
        queue_arn: str,
        batch_size: int,
        report_batch_item_failures: bool,
        batching_window: float = 0.0,
        wait_seconds: int = 1,
    ) -> None:
        self._sqs = sqs
        self._function = function
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._batch_size = max(1, min(batch_size, 10))  # one ReceiveMessage returns at most 10
        self._partial = report_batch_item_failures
        self._batching_window = batching_window
        self._wait_seconds = wait_seconds
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sqs-{function.logical_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=self._wait_seconds + 5)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self.poll_once()
            except Exception:
                if not self._stopped.is_set():
                    log.exception("polling %s failed", self._queue_url)
                    self._stopped.wait(1)

    def poll_once(self) -> int:
        """Receive one batch, invoke the function, delete what succeeded; returns the batch size."""
        received = self._receive(self._batch_size, self._wait_seconds)
        if not received:
            return 0
        window_ends = time.monotonic() + self._batching_window
        while len(received) < self._batch_size and time.monotonic() < window_ends and not self._stopped.is_set():
            more = self._receive(self._batch_size - len(received), 0)
            if more:
                received += more
            else:
                self._stopped.wait(min(0.05, max(window_ends - time.monotonic(), 0)))
        event = {"Records": [self._record(m) for m in received]}
        try:
            result = self._function.invoke(event)
        except FunctionError:
            return len(received)  # every message returns to the queue after its visibility timeout
        failed = set()
        if self._partial and isinstance(result, dict):
            failed = {f.get("itemIdentifier") for f in result.get("batchItemFailures") or []}
        done = [m for m in received if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
                ],
            )
        return len(received)

    def _receive(self, count: int, wait_seconds: int) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        return messages

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {
                name: {
                    "stringValue": a.get("StringValue"),
                    "binaryValue": a.get("BinaryValue"),
                    "stringListValues": [],
                    "binaryListValues": [],
                    "dataType": a["DataType"],
                }
                for name, a in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self._queue_arn,
            "awsRegion": self._queue_arn.split(":")[3],
        }


class StreamPoller:
    """Lambda's DynamoDB stream event source mapping: batches in stream order, partial batch failures
    (retry from the first failed record), bounded retries, then the record's position to the on-failure
    destination (an SQS queue), as Lambda sends it."""

    def __init__(
        self,
        streams: Any,
        sqs: Any,
        function: LocalFunction,
        stream_arn: str,
        batch_size: int,
        max_retries: int,
        on_failure_queue_url: str | None,
        retry_interval: float = 0.2,
        idle_wait: float = 1.0,
    ) -> None:
        self._streams = streams
        self._sqs = sqs
        self._function = function
        self._stream_arn = stream_arn
        self._batch_size = max(1, min(batch_size, 1000))
        self._max_retries = max_retries
        self._on_failure = on_failure_queue_url
        self._retry_interval = retry_interval  # between attempts at a batch that failed
        self._idle_wait = idle_wait  # longest sleep with nothing to read; a write to a stream wakes it sooner
        self._pending: list[dict[str, Any]] = []  # read from the stream, not yet processed successfully
        self._attempts = 0
        self._iterator: str | None = None
        self._shard_id: str | None = None
        self._stopped = threading.Event()
        self._writes = stream_writes.of(stream_arn.split("/stream/")[0])  # the table's ARN
        self._thread = threading.Thread(target=self._run, name=f"stream-{function.logical_id}", daemon=True)

    def start(self) -> None:
        shard = self._streams.describe_stream(StreamArn=self._stream_arn)["StreamDescription"]["Shards"][0]
        self._shard_id = shard["ShardId"]
        self._iterator = self._streams.get_shard_iterator(
            StreamArn=self._stream_arn, ShardId=self._shard_id, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._writes.notify()  # wakes it from waiting for a write
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                writes = self._writes.count()
                if self.poll_once():
                    continue
                if self._pending:  # a batch that failed: Lambda tries it again soon
                    self._stopped.wait(self._retry_interval)
                elif not self._stopped.is_set():
                    self._writes.wait_past(writes, self._idle_wait)
            except Exception:
                if not self._stopped.is_set():
                    log.exception("polling %s failed", self._stream_arn)
                    self._stopped.wait(1)

    def poll_once(self) -> int:
        """Read new records, invoke the function with the oldest batch; returns how many records it processed."""
        if len(self._pending) < self._batch_size and self._iterator:
            page = self._streams.get_records(ShardIterator=self._iterator, Limit=1000)
            self._iterator = page.get("NextShardIterator")
            self._pending += [self._record(r) for r in page.get("Records", [])]
        batch = self._pending[: self._batch_size]
        if not batch:
            return 0
        try:
            result = self._function.invoke({"Records": batch})
            failed = [f.get("itemIdentifier") for f in (result or {}).get("batchItemFailures") or []]
        except FunctionError:
            failed = [batch[0]["dynamodb"]["SequenceNumber"]]
        sequence = [r["dynamodb"]["SequenceNumber"] for r in batch]
        done = min((sequence.index(f) for f in failed if f in sequence), default=len(batch))
        del self._pending[:done]  # checkpoint: everything before the first failure is done
        if done == len(batch):
            self._attempts = 0
        else:
            self._attempts += 1
            if 0 <= self._max_retries < self._attempts:  # -1: retry until the record expires, as Lambda
                self._discard(self._pending.pop(0))
                self._attempts = 0
        return done

    def _discard(self, record: dict[str, Any]) -> None:
        log.error("stream record %s dropped after %d retries", record["dynamodb"]["SequenceNumber"], self._max_retries)
        if self._on_failure:
            self._sqs.send_message(
                QueueUrl=self._on_failure,
                MessageBody=json.dumps(
                    {
                        "requestContext": {"condition": "RetryAttemptsExhausted", "functionArn": self._function.arn},
                        "DDBStreamBatchInfo": {
                            "streamArn": self._stream_arn,
                            "batchSize": 1,
                            **({"shardId": self._shard_id} if self._shard_id else {}),
                            "startSequenceNumber": record["dynamodb"]["SequenceNumber"],
                            "endSequenceNumber": record["dynamodb"]["SequenceNumber"],
                        },
                    }
                ),
            )

    def _record(self, record: dict[str, Any]) -> dict[str, Any]:
        change = dict(record["dynamodb"])
        created = change.get("ApproximateCreationDateTime")
        if hasattr(created, "timestamp"):
            change["ApproximateCreationDateTime"] = int(created.timestamp())  # Lambda sends epoch seconds
        return {**record, "dynamodb": change, "eventSourceARN": self._stream_arn}


class SchedulePoller:
    """EventBridge Scheduler, which moto does not fire: invokes the function every `seconds`, with the event a
    schedule's Lambda target gets. run_now() is what POST /dev/schedules/{name}/run does."""

    def __init__(self, name: str, function: LocalFunction, seconds: float) -> None:
        self.name = name
        self._function = function
        self._seconds = seconds
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"schedule-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def run_now(self) -> Any:
        return self._function.invoke(
            {
                "source": "aws.scheduler",
                "detail-type": "Scheduled Event",
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "resources": [self.name],
                "detail": {},
            }
        )

    def _run(self) -> None:
        while not self._stopped.wait(self._seconds):
            # Logged by invoke; the next run tries again, as the scheduler would.
            with contextlib.suppress(FunctionError):
                self.run_now()
