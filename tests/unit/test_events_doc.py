"""docs/events.md, the integration events' public schema, against storefront/integration_events.py: it documents
exactly the event types the code can publish, and the schema version the code stamps on them."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest
from storefront import integration_events
from storefront.integration_events import EVENT_TYPES, ORDER_EVENT_TYPES, PUBLISHED_ORDER_FIELDS, SCHEMA_VERSION
from storefront.orders.models import Order

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"
TYPE_COLUMN = "detail-type"  # the heading of the table's first column, which names the event types


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table outside code blocks, as rows of cells (header first, the |---| line dropped)."""
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    fenced = False
    for line in [*text.splitlines(), ""]:
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if not fenced and line.lstrip().startswith("|"):
            if not re.fullmatch(r"\|?[\s:|-]+\|?", line.strip()):
                current.append(_cells(line))
            continue
        if current:
            tables.append(current)
            current = []
    return tables


def _unquote(cell: str) -> str:
    return cell.replace("`", "").strip()


def documented_types() -> list[str]:
    """The event types in docs/events.md's table whose first column is `detail-type`, in the doc's order."""
    tables = [t for t in _tables(DOC.read_text()) if _unquote(t[0][0]).lower() == TYPE_COLUMN]
    assert len(tables) == 1, f"docs/events.md should have one table whose first column is {TYPE_COLUMN!r}"
    return [_unquote(row[0]) for row in tables[0][1:] if _unquote(row[0])]


def emitted_types() -> set[str]:
    """What the code can publish: every order event type, and every literal `type=` of an IntegrationEvent made
    in storefront/integration_events.py (stock.low), read from the source so that a new one cannot hide."""
    literals = set()
    for node in ast.walk(ast.parse(inspect.getsource(integration_events))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "IntegrationEvent":
            for keyword in node.keywords:
                if keyword.arg == "type" and isinstance(keyword.value, ast.Constant):
                    literals.add(keyword.value.value)
    assert "stock.low" in literals, "the stock.low event is no longer made where this test looks for it"
    return {*ORDER_EVENT_TYPES.values(), *literals}


def test_the_code_declares_every_event_type_it_makes() -> None:
    assert emitted_types() == EVENT_TYPES


def test_the_doc_lists_every_event_type_once() -> None:
    types = documented_types()
    assert len(types) == len(set(types)), f"listed more than once: {sorted({t for t in types if types.count(t) > 1})}"


def test_the_doc_documents_exactly_the_event_types_the_code_publishes() -> None:
    documented, emitted = set(documented_types()), emitted_types()
    assert not emitted - documented, f"published but not in docs/events.md: {sorted(emitted - documented)}"
    assert not documented - emitted, f"in docs/events.md but never published: {sorted(documented - emitted)}"


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_each_event_type_says_when_it_is_published(event_type: str) -> None:
    table = next(t for t in _tables(DOC.read_text()) if _unquote(t[0][0]).lower() == TYPE_COLUMN)
    row = next(row for row in table[1:] if _unquote(row[0]) == event_type)
    assert len(row) > 1 and row[1], f"docs/events.md: {event_type} has no description"


def test_the_doc_states_the_schema_version_the_code_publishes() -> None:
    text = DOC.read_text()
    title = re.search(r"^#\s.*\(schema version (\d+)\)", text, re.MULTILINE | re.IGNORECASE)
    assert title, "docs/events.md's title should say its schema version: '# ... (schema version N)'"
    assert int(title.group(1)) == SCHEMA_VERSION
    examples = [int(v) for v in re.findall(r'"schema_version"\s*:\s*(\d+)', text)]
    assert examples, "docs/events.md shows no example with a schema_version"
    assert set(examples) == {SCHEMA_VERSION}, f"examples give schema_version {examples}, the code {SCHEMA_VERSION}"


def test_the_doc_lists_exactly_the_order_fields_an_event_carries() -> None:
    table = next(t for t in _tables(DOC.read_text()) if _unquote(t[0][0]).lower() == "order field")
    documented = {_unquote(row[0]) for row in table[1:]}
    assert documented == set(PUBLISHED_ORDER_FIELDS), (
        f"docs/events.md vs PUBLISHED_ORDER_FIELDS: {sorted(documented ^ set(PUBLISHED_ORDER_FIELDS))}"
    )
    assert set(PUBLISHED_ORDER_FIELDS) <= set(Order.model_fields), "an allow-listed field the order does not have"
    payment_row = next(row for row in table[1:] if _unquote(row[0]) == "payment")
    assert {f"`{name}`" for name in PUBLISHED_ORDER_FIELDS["payment"]} <= set(re.findall(r"`\w+`", payment_row[1]))
    assert {"email", "shipping_address"}.isdisjoint(documented), "personal data is never published"
