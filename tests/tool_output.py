"""What an operations tool printed on stdout, without what the local cloud's functions printed meanwhile.

The session's local cloud runs functions in the test's process, on background threads too (stream and queue
pollers, the workflow's tasks finishing an earlier test's order). Their JSON log lines and metric blobs go to
sys.stdout, which is pytest's capture of whichever test runs at that moment."""

from __future__ import annotations

import pytest


def tool_stdout(capsys: pytest.CaptureFixture[str]) -> str:
    printed = capsys.readouterr().out.splitlines(keepends=True)
    return "".join(line for line in printed if not line.startswith(('{"_aws":', '{"level":')))
