"""local_cloud.gateway: HTTP request -> payload format 2.0 event, and the response back, as API Gateway does."""

from __future__ import annotations

import base64

from local_cloud.gateway import CompiledRoute, Cors, build_event, to_http_response
from local_cloud.template import Route

ROUTE = Route("POST", "/webhooks/payments/{provider}", "PaymentWebhookFunction")


def test_event_has_the_v2_shape() -> None:
    event = build_event(
        ROUTE,
        "POST",
        "/webhooks/payments/stripe?a=1&a=2&b=",
        [
            ("Host", "127.0.0.1:3000"),
            ("Content-Type", "application/json"),
            ("X-Multi", "1"),
            ("X-Multi", "2"),
            ("Cookie", "c1=v1; c2=v2"),
        ],
        b'{"x": 1}',
        {"provider": "stripe"},
        "127.0.0.1",
    )
    assert event["version"] == "2.0"
    assert event["routeKey"] == event["requestContext"]["routeKey"] == "POST /webhooks/payments/{provider}"
    assert event["rawPath"] == "/webhooks/payments/stripe"
    assert event["rawQueryString"] == "a=1&a=2&b="
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}  # repeated values comma-joined
    assert event["headers"]["x-multi"] == "1,2" and "cookie" not in event["headers"]
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    assert event["pathParameters"] == {"provider": "stripe"}
    assert event["requestContext"]["http"] == {
        "method": "POST",
        "path": "/webhooks/payments/stripe",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "",
    }
    assert (event["body"], event["isBase64Encoded"]) == ('{"x": 1}', False)


def test_binary_bodies_arrive_base64_encoded_byte_for_byte() -> None:
    raw = bytes(range(256))
    event = build_event(
        ROUTE, "POST", "/webhooks/payments/x", [("Content-Type", "application/octet-stream")], raw, {}, "127.0.0.1"
    )
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == raw


def test_responses_translate_back() -> None:
    status, headers, body = to_http_response(
        {"statusCode": 201, "headers": {"Location": "/carts/1"}, "cookies": ["a=1", "b=2"], "body": "{}"}
    )
    assert (status, body) == (201, b"{}")
    assert ("Location", "/carts/1") in headers and headers.count(("Set-Cookie", "a=1")) == 1
    assert (
        to_http_response({"statusCode": 200, "body": base64.b64encode(b"\x00\x01").decode(), "isBase64Encoded": True})[
            2
        ]
        == b"\x00\x01"
    )
    assert to_http_response({"ok": True}) == (200, [("Content-Type", "application/json")], b'{"ok": true}')


def test_route_patterns() -> None:
    compiled = CompiledRoute.of(Route("GET", "/carts/{cart_id}/items/{sku}", "Cart"))
    assert compiled.pattern.match("/carts/abc/items/SKU-1").groupdict() == {"cart_id": "abc", "sku": "SKU-1"}
    assert compiled.pattern.match("/carts/abc/items") is None
    assert compiled.pattern.match("/carts/a/b/items/c") is None
    greedy = CompiledRoute.of(Route("ANY", "/static/{proxy+}", "Web"))
    assert greedy.pattern.match("/static/a/b.css").groupdict() == {"proxy": "a/b.css"}


def test_cors_origin_patterns() -> None:
    cors = Cors({"AllowOrigins": ["http://localhost:*", "https://shop.example.com"], "ExposeHeaders": ["ETag"]})
    assert cors.allowed("http://localhost:5173") == "http://localhost:5173"
    assert cors.allowed("https://shop.example.com") == "https://shop.example.com"
    assert cors.allowed("https://shop.example.com.evil.test") is None
    assert cors.allowed("http://localhost.evil.test:80") is None
    assert cors.allowed("http://localhost:1@evil.test") is None
    assert cors.allowed("http://localhost:") is None
    assert cors.response_headers(None) == []
