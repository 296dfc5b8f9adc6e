"""storefront.http.EdgeOnly, the optional edge's gate (docs/observability.md, "The edge"): with the edge on, a request
reaches a route only with CloudFront's origin header (missing or wrong: 403, the route never runs), the viewer's
address is taken only from such a request, both slots are accepted during a rotation and the emptied one no longer
afterwards, and a secret that cannot be read lets nothing through (503). With the edge off nothing changes and no
viewer-address header is trusted. Through Mangum and a real (moto) Secrets Manager, as on Lambda."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
from fastapi import Request
from storefront.config import EdgeSettings
from storefront.http import ORIGIN_SECRET_HEADER, VIEWER_ADDRESS_HEADER, client_ip, create_app
from storefront.observability import http_handler

from local_cloud.functions import LambdaContext

CONTEXT = LambdaContext("test", "arn:aws:lambda:us-east-1:123456789012:function:test", 128, 3)
API_GATEWAY_SOURCE = "130.176.0.10"  # behind the edge: a CloudFront address
BLUE, GREEN = "b1ue" * 16, "gr33n" * 12 + "0000"  # as the stack generates them: 64 letters and digits


class Function:
    """An HTTP function with one route that reports the client address it was given, and counts its runs."""

    def __init__(self, secret_id: str) -> None:
        self.runs = 0
        app = create_app("test", edge=EdgeSettings(EDGE_ORIGIN_SECRET_ID=secret_id))

        @app.post("/checkout")
        def checkout(request: Request) -> dict[str, str]:
            self.runs += 1
            return {"client_ip": client_ip(request)}

        self.handler = http_handler(app, Logger(service="test"))

    def call(self, headers: dict[str, str], body: str = "{}") -> dict[str, Any]:
        event = {
            "version": "2.0",
            "routeKey": "POST /checkout",
            "rawPath": "/checkout",
            "rawQueryString": "",
            # API Gateway hands a function its headers lower-cased.
            "headers": {
                "host": "api-origin.shop.example.com",
                "content-type": "application/json",
                **{name.lower(): value for name, value in headers.items()},
            },
            "isBase64Encoded": False,
            "body": body,
            "requestContext": {
                "http": {
                    "method": "POST",
                    "path": "/checkout",
                    "protocol": "HTTP/1.1",
                    "sourceIp": API_GATEWAY_SOURCE,
                    "userAgent": "Amazon CloudFront",
                },
                "requestId": "r",
                "routeKey": "POST /checkout",
                "stage": "$default",
                "accountId": "1",
                "apiId": "a",
                "domainName": "api-origin.shop.example.com",
                "domainPrefix": "api-origin",
                "time": "",
                "timeEpoch": 0,
            },
        }
        response = self.handler(event, CONTEXT)
        response["json"] = json.loads(response["body"]) if response["body"] else None
        return response


@pytest.fixture
def secrets_manager(cloud: Any) -> Iterator[Any]:
    """The session's local cloud's Secrets Manager (which every boto3 client of this process talks to), not
    mock_aws: mock_aws resets every moto backend of its process, the local cloud's included."""
    DEFAULT_PROVIDERS.clear()  # Powertools' client (and its cache) made for this Secrets Manager
    yield cloud.client("secretsmanager")
    DEFAULT_PROVIDERS.clear()


def _origin_secret(client: Any, value: dict[str, str]) -> str:
    """The secret as template.yaml's EdgeOriginSecret holds it: {"blue": ..., "green": ...}."""
    return client.create_secret(Name=f"edge-{uuid.uuid4()}", SecretString=json.dumps(value))["ARN"]


def _forbidden(response: dict[str, Any]) -> bool:
    return (
        response["statusCode"] == 403
        and response["headers"]["content-type"] == "application/problem+json"
        and response["json"]["code"] == "forbidden"
    )


def test_with_the_edge_off_every_request_passes_and_no_viewer_address_is_trusted() -> None:
    function = Function(secret_id="")
    forged = function.call({VIEWER_ADDRESS_HEADER: "192.0.2.66:443", ORIGIN_SECRET_HEADER: "anything"})
    assert forged["statusCode"] == 200 and forged["json"] == {"client_ip": API_GATEWAY_SOURCE}
    assert function.runs == 1


def test_a_request_without_the_origin_header_is_refused_before_anything_runs(secrets_manager: Any) -> None:
    function = Function(_origin_secret(secrets_manager, {"blue": BLUE, "green": ""}))
    assert _forbidden(function.call({VIEWER_ADDRESS_HEADER: "192.0.2.66:443"}))
    # Refused before the body is read, however large (the 16 KB limit would answer 413 further in).
    assert _forbidden(function.call({}, body="x" * 100_000))
    assert function.runs == 0


def test_a_request_without_the_header_costs_no_secret_read() -> None:
    function = Function("arn:aws:secretsmanager:us-east-1:123456789012:secret:not-there-AbCdEf")
    assert _forbidden(function.call({}))  # had it read the secret, this would be a 503


@pytest.mark.parametrize(
    "presented",
    ["", "wrong", GREEN, BLUE[:-1], BLUE + "0", BLUE.upper(), f"{BLUE},{BLUE}"],
    ids=["empty", "wrong", "the idle slot", "one short", "one long", "upper case", "twice"],
)
def test_a_wrong_origin_header_is_refused(secrets_manager: Any, presented: str) -> None:
    function = Function(_origin_secret(secrets_manager, {"blue": BLUE, "green": ""}))
    assert _forbidden(function.call({ORIGIN_SECRET_HEADER: presented, VIEWER_ADDRESS_HEADER: "192.0.2.66:443"}))
    assert function.runs == 0


def test_the_right_origin_header_passes_with_the_viewers_address(secrets_manager: Any) -> None:
    function = Function(_origin_secret(secrets_manager, {"blue": BLUE, "green": ""}))
    for viewer, address in (("198.51.100.7:51234", "198.51.100.7"), ("2001:db8::1:46532", "2001:db8::1")):
        response = function.call({ORIGIN_SECRET_HEADER: BLUE, VIEWER_ADDRESS_HEADER: viewer})
        assert response["statusCode"] == 200 and response["json"] == {"client_ip": address}
    # CloudFront always names the viewer; without the header the address is API Gateway's.
    assert function.call({ORIGIN_SECRET_HEADER: BLUE})["json"] == {"client_ip": API_GATEWAY_SOURCE}
    assert function.runs == 3


def test_a_rotation_accepts_both_slots_then_only_the_new_one(secrets_manager: Any) -> None:
    secret_id = _origin_secret(secrets_manager, {"blue": BLUE, "green": ""})
    function = Function(secret_id)
    assert function.call({ORIGIN_SECRET_HEADER: BLUE})["statusCode"] == 200
    assert _forbidden(function.call({ORIGIN_SECRET_HEADER: GREEN}))

    # 1. The new value goes into the idle slot; once every environment's cache has lapsed, both pass (CloudFront
    #    still sends blue until the stack's EdgeOriginHeaderSlot flips to green).
    secrets_manager.put_secret_value(SecretId=secret_id, SecretString=json.dumps({"blue": BLUE, "green": GREEN}))
    DEFAULT_PROVIDERS.clear()  # SECRET_CACHE_SECONDS later
    assert [function.call({ORIGIN_SECRET_HEADER: v})["statusCode"] for v in (BLUE, GREEN)] == [200, 200]

    # 2. After the flip has deployed, the old slot is emptied: the old value no longer opens the API.
    secrets_manager.put_secret_value(SecretId=secret_id, SecretString=json.dumps({"blue": "", "green": GREEN}))
    DEFAULT_PROVIDERS.clear()
    assert _forbidden(function.call({ORIGIN_SECRET_HEADER: BLUE}))
    assert function.call({ORIGIN_SECRET_HEADER: GREEN})["statusCode"] == 200
    assert function.runs == 4


UNUSABLE = {
    "not json": "plain-text-value-9f3",
    "both slots empty": json.dumps({"blue": "", "green": ""}),
    "too short": json.dumps({"blue": "too-short-7c1"}),  # not what the stack generates
    "unknown slot": json.dumps({"blue": BLUE, "purple": GREEN}),
}


@pytest.mark.parametrize("stored", UNUSABLE.values(), ids=UNUSABLE.keys())
def test_a_secret_that_cannot_be_used_lets_nothing_through_and_leaks_nothing(
    secrets_manager: Any, caplog: pytest.LogCaptureFixture, stored: str
) -> None:
    function = Function(secrets_manager.create_secret(Name=f"edge-{uuid.uuid4()}", SecretString=stored)["ARN"])
    with caplog.at_level(logging.ERROR, logger="storefront.http"):
        response = function.call({ORIGIN_SECRET_HEADER: BLUE})
    assert response["statusCode"] == 503 and response["json"]["code"] == "busy"
    assert response["headers"]["retry-after"] == "1"
    assert function.runs == 0
    assert "origin secret cannot be read" in caplog.text
    for value in (BLUE, GREEN, "too-short-7c1", "plain-text-value-9f3"):
        assert value not in caplog.text and value not in response["body"]


def test_a_secrets_manager_outage_is_a_503_not_a_500(secrets_manager: Any) -> None:
    secret_id = _origin_secret(secrets_manager, {"blue": BLUE, "green": ""})
    secrets_manager.delete_secret(SecretId=secret_id, ForceDeleteWithoutRecovery=True)
    function = Function(secret_id)
    response = function.call({ORIGIN_SECRET_HEADER: BLUE})
    assert response["statusCode"] == 503 and response["json"]["code"] == "busy" and function.runs == 0
