"""Product images over HTTP on the local cloud: the admin API hands out a presigned POST for one image, the upload
goes to the images bucket (moto's S3), and the local stack serves the image at its URL, as the edge does on AWS."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from typing import Any

import httpx
import pytest

from tests.admin_api import assert_problem, bearer, create_category, create_product


def png(width: int = 2, height: int = 2) -> bytes:
    """A real PNG image (red pixels)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def admin(gateway: Any) -> dict[str, str]:
    with httpx.Client(base_url=gateway.url, timeout=30) as api:
        return bearer(api, "admin")


@pytest.fixture
def product(api: httpx.Client, admin: dict[str, str]) -> dict[str, Any]:
    return create_product(api, admin, create_category(api, admin))


def upload(ticket: dict[str, Any], content: bytes, content_type: str = "image/png") -> httpx.Response:
    return httpx.post(
        ticket["upload"]["url"],
        data=ticket["upload"]["fields"],
        files={"file": ("photo", content, content_type)},
        timeout=30,
    )


def test_an_image_is_uploaded_with_the_presigned_post_and_served_at_its_url(
    api: httpx.Client, gateway: Any, admin: dict[str, str], product: dict[str, Any]
) -> None:
    image = png()
    response = api.post(
        f"/admin/products/{product['id']}/images", json={"content_type": "image/png", "size": len(image)}, headers=admin
    )
    assert response.status_code == 201, response.text
    ticket = response.json()
    assert ticket["image_url"].startswith(f"{gateway.url}/images/{product['id']}/") and ticket["image_url"].endswith(
        ".png"
    )
    fields = ticket["upload"]["fields"]
    key = ticket["image_url"].removeprefix(f"{gateway.url}/")
    assert fields["key"] == key and fields["Content-Type"] == "image/png"
    policy = json.loads(base64.b64decode(fields["policy"]))
    assert {"key": key} in policy["conditions"] and {"Content-Type": "image/png"} in policy["conditions"]
    assert ["content-length-range", 1, len(image)] in policy["conditions"]
    assert {"Cache-Control": "public, max-age=31536000, immutable"} in policy["conditions"]

    # The product names the image at once; the URL finds it once the upload is done.
    assert api.get(f"/admin/products/{product['id']}", headers=admin).json()["images"] == [ticket["image_url"]]
    assert api.get(f"/products/{product['id']}").json()["images"] == [ticket["image_url"]]
    assert httpx.get(ticket["image_url"]).status_code == 404
    uploaded = upload(ticket, image)
    assert uploaded.status_code in (200, 201, 204), uploaded.text
    served = httpx.get(ticket["image_url"])
    assert served.status_code == 200 and served.content == image
    assert served.headers["content-type"] == "image/png"
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    [entry, *_] = api.get("/admin/audit", params={"limit": 5}, headers=admin).json()["items"]
    assert (entry["action"], entry["target"]) == ("product.add_image", f"product:{product['id']}")
    assert entry["changes"] == {"images": {"before": [], "after": [ticket["image_url"]]}}


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"content": png(40, 40)}, 400, "EntityTooLarge"),  # bigger than the size declared
        ({"fields": {"Content-Type": "text/html"}}, 403, "AccessDenied"),
        ({"fields": {"key": "images/another/file.png"}}, 403, "AccessDenied"),
        ({"fields": {"Cache-Control": "no-cache"}}, 403, "AccessDenied"),
    ],
)
def test_the_bucket_takes_only_the_upload_the_policy_describes(  # S3's checks, which moto_fixes makes moto's
    api: httpx.Client, admin: dict[str, str], product: dict[str, Any], change: dict[str, Any], status: int, code: str
) -> None:
    image = png()
    ticket = api.post(
        f"/admin/products/{product['id']}/images", json={"content_type": "image/png", "size": len(image)}, headers=admin
    ).json()
    ticket["upload"]["fields"].update(change.get("fields", {}))
    refused = upload(ticket, change.get("content", image))
    assert refused.status_code == status and f"<Code>{code}</Code>" in refused.text, refused.text
    assert httpx.get(ticket["image_url"]).status_code == 404
    assert api.get("/images/another/file.png").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"content_type": "image/gif", "size": 10}, "content_type"),
        ({"content_type": "image/svg+xml", "size": 10}, "content_type"),
        ({"content_type": "image/png", "size": 5 * 1024 * 1024 + 1}, "size"),
        ({"content_type": "image/png", "size": 0}, "size"),
        ({"content_type": "image/png", "size": "10"}, "size"),
        ({"content_type": "image/png"}, "size"),
        ({"content_type": "image/png", "size": 10, "key": "images/x"}, "key"),
    ],
)
def test_uploads_outside_the_contract_are_422_and_change_nothing(
    api: httpx.Client, admin: dict[str, str], product: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    problem = assert_problem(api.post(f"/admin/products/{product['id']}/images", json=body, headers=admin), 422)
    assert [e["field"] for e in problem["errors"]] == [field]
    assert api.get(f"/admin/products/{product['id']}", headers=admin).json()["version"] == 1


def test_unknown_archived_and_staff(api: httpx.Client, admin: dict[str, str], product: dict[str, Any]) -> None:
    body = {"content_type": "image/jpeg", "size": 1000}
    assert_problem(api.post("/admin/products/no-such-product/images", json=body, headers=admin), 404, "not_found")
    assert_problem(
        api.post(f"/admin/products/{product['id']}/images", json=body, headers=bearer(api, "staff")), 403, "forbidden"
    )
    assert api.delete(f"/admin/products/{product['id']}", headers=admin).status_code == 204
    assert_problem(
        api.post(f"/admin/products/{product['id']}/images", json=body, headers=admin), 409, "product_archived"
    )
    assert api.get(f"/admin/products/{product['id']}", headers=admin).json()["images"] == []


def test_a_product_has_at_most_twenty_images(api: httpx.Client, admin: dict[str, str], product: dict[str, Any]) -> None:
    body = {"content_type": "image/webp", "size": 1000}
    for _ in range(20):
        assert api.post(f"/admin/products/{product['id']}/images", json=body, headers=admin).status_code == 201
    problem = assert_problem(
        api.post(f"/admin/products/{product['id']}/images", json=body, headers=admin), 422, "too_many_images"
    )
    assert problem["errors"][0]["field"] == "images"
    assert len(api.get(f"/admin/products/{product['id']}", headers=admin).json()["images"]) == 20


def test_the_local_stack_serves_only_image_keys(api: httpx.Client) -> None:
    assert api.get("/images/../template.yaml").status_code == 404
    assert api.get("/images/no-such/thing.png").status_code == 404
