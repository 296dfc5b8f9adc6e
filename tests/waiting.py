"""Waiting in tests for what happens asynchronously (queues, streams, workflows), without fixed sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """condition()'s first truthy result, asked every 0.1 s; AssertionError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
    return result
