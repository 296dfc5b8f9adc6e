"""storefront.aws.LazyClient: a boto3 client made at its first use (once, whichever thread asks first), or before a
SnapStart snapshot."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from storefront import aws, snapstart


class Made:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()

    def client(self, service: str, **options: Any) -> Any:
        with self.lock:
            self.calls.append((service, options))
        return type("Client", (), {"send_message": lambda self, **kw: ("sent", kw)})()


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> Made:
    made = Made()
    monkeypatch.setattr(aws.boto3, "client", made.client)
    monkeypatch.setattr(snapstart, "_to_prime", [])
    return made


def test_nothing_is_made_until_the_first_call_and_then_once(made: Made) -> None:
    sqs = aws.LazyClient("sqs", region_name="eu-west-1")
    assert made.calls == []  # a cold start that never sends pays nothing
    assert sqs.send_message(QueueUrl="q") == ("sent", {"QueueUrl": "q"})
    assert sqs.send_message(QueueUrl="r")[0] == "sent"
    assert made.calls == [("sqs", {"region_name": "eu-west-1"})]


def test_threads_asking_at_once_share_one_client(made: Made) -> None:
    lam = aws.LazyClient("lambda")
    start = threading.Barrier(8)
    clients: list[Any] = []

    def ask() -> None:
        start.wait()
        clients.append(lam.make())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made.calls) == 1 and len({id(c) for c in clients}) == 1


def test_a_snapstart_snapshot_holds_the_client_ready(made: Made) -> None:
    aws.LazyClient("stepfunctions")
    assert made.calls == []
    snapstart.before_snapshot()
    assert made.calls == [("stepfunctions", {})]
