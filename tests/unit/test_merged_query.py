"""storefront.dynamodb.merged_query: several partitions read as one list, page after page, on an in-memory index that
answers Query as DynamoDB does (key conditions, order, Limit, and pages cut short as its 1 MB limit cuts them)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from storefront.dynamodb import SortKeyRange, merged_query


class FakeIndex:
    def __init__(self, items: list[tuple[str, str]], cut: int) -> None:
        self.items = [{"p": {"S": p}, "r": {"S": r}} for p, r in items]
        self.cut = cut  # at most this many items per response, whatever Limit says (DynamoDB's 1 MB)

    def query(self, **request: Any) -> dict[str, Any]:
        names, values = request["ExpressionAttributeNames"], request["ExpressionAttributeValues"]
        condition = request["KeyConditionExpression"]
        assert names["#h"] == "p" and names.get("#r", "r") == "r"
        rows = sorted(
            (i for i in self.items if i["p"] == values[":h"]),
            key=lambda i: i["r"]["S"],
            reverse=not request["ScanIndexForward"],
        )
        if "BETWEEN" in condition:
            assert values[":low"]["S"] <= values[":high"]["S"], "DynamoDB refuses a BETWEEN the wrong way round"
            rows = [i for i in rows if values[":low"]["S"] <= i["r"]["S"] <= values[":high"]["S"]]
        elif "<=" in condition:
            rows = [i for i in rows if i["r"]["S"] <= values[":high"]["S"]]
        elif ">=" in condition:
            rows = [i for i in rows if i["r"]["S"] >= values[":low"]["S"]]
        if "ExclusiveStartKey" in request:
            rows = rows[rows.index(request["ExclusiveStartKey"]) + 1 :]
        page = rows[: min(request["Limit"], self.cut)]
        return {"Items": page, **({"LastEvaluatedKey": page[-1]} if len(rows) > len(page) else {})}


keys = st.text(alphabet="abcdef", min_size=1, max_size=4)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(keys, st.sampled_from(["p0", "p1", "p2"]), max_size=40),
    st.integers(1, 7),
    st.integers(1, 10),
    st.booleans(),
    st.one_of(st.none(), keys),
    st.one_of(st.none(), keys),
)
def test_pages_list_every_item_once_in_order(
    items: dict[str, str], limit: int, cut: int, descending: bool, low: str | None, high: str | None
) -> None:
    index = FakeIndex([(partition, key) for key, partition in items.items()], cut)
    expected = sorted(
        (k for k in items if (low is None or k >= low) and (high is None or k <= high)), reverse=descending
    )
    seen: list[str] = []
    after = None
    while True:
        page, more = merged_query(
            index,
            "t",
            "i",
            "p",
            "r",
            ["p0", "p1", "p2"],
            limit,
            SortKeyRange(low=low, high=high, after=after),
            descending=descending,
        )
        assert len(page) <= limit and (not more or len(page) == limit)
        seen += [item["r"]["S"] for item in page]
        if not more:
            break
        after = page[-1]["r"]["S"]
    assert seen == expected
