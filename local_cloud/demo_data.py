"""The demo data `make dev` serves: five categories, 24 products with variants, prices, stock and a picture each
(in the images bucket, when the gateway serves images); and a few
fixed-id records (a cart; orders pending, awaiting payment, paid and fulfilling, each holding the stock its status
implies) that the sample events in events/ act on.

Written through the same repositories (and, for payments and shipments, services) the functions use, so the items
have exactly the production shape.
"""

from __future__ import annotations

import colorsys
import os
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from storefront.cart.models import Cart, StoredCart, StoredLine, StoredShipping
from storefront.cart.repository import CartRepository
from storefront.cart.service import CartService
from storefront.catalog.images import IMAGE_CACHE_CONTROL
from storefront.catalog.models import Category, StoredProduct, StoredVariant
from storefront.catalog.repository import CatalogRepository
from storefront.fulfilment.models import Shipment, ShipmentRequest, TrackingStatus
from storefront.fulfilment.service import FulfilmentService
from storefront.inventory.repository import InventoryRepository
from storefront.inventory.stock_function import StockFunctionClient
from storefront.money import Money
from storefront.orders.models import Address, OrderStatus, StoredOrder
from storefront.orders.repository import OrderRepository
from storefront.payments.models import CreatedPayment
from storefront.payments.providers import StepFunctionsWorkflow
from storefront.payments.service import PaymentTasks
from storefront.shop import load_shop_config

if TYPE_CHECKING:
    from local_cloud.cloud import LocalCloud
    from local_cloud.local_carrier import LocalCarrier

CATEGORIES = {
    "shirts": "Shirts",
    "trousers": "Trousers",
    "shoes": "Shoes",
    "accessories": "Accessories",
    "home": "Home",
}

# id, category, name, description, price in cents, variants as (suffix, title, stock)
_SIZES = [("S", "Small", 12), ("M", "Medium", 20), ("L", "Large", 8)]
_ONE = [("ONE", "One size", 25)]
PRODUCTS: list[tuple[str, str, str, str, int, list[tuple[str, str, int]]]] = [
    ("linen-shirt", "shirts", "Linen shirt", "Breathable European linen, relaxed fit.", 5900, _SIZES),
    ("oxford-shirt", "shirts", "Oxford shirt", "Brushed cotton oxford with a button-down collar.", 4900, _SIZES),
    ("flannel-shirt", "shirts", "Flannel shirt", "Heavy brushed flannel for cold mornings.", 5500, _SIZES),
    ("denim-shirt", "shirts", "Denim shirt", "Rinsed indigo denim, pearl snaps.", 6900, _SIZES),
    ("polo-shirt", "shirts", "Piqué polo", "Organic cotton piqué polo.", 3900, _SIZES),
    ("chinos", "trousers", "Chinos", "Stretch cotton twill, tapered leg.", 7900, _SIZES),
    ("selvedge-jeans", "trousers", "Selvedge jeans", "14 oz Japanese selvedge denim.", 12900, _SIZES),
    ("wool-trousers", "trousers", "Wool trousers", "Tropical wool, flat front.", 11900, _SIZES),
    ("cargo-pants", "trousers", "Cargo pants", "Ripstop cotton with six pockets.", 8900, _SIZES),
    ("running-shorts", "trousers", "Running shorts", "Light shorts with a zip pocket.", 3500, _SIZES),
    (
        "leather-sneakers",
        "shoes",
        "Leather sneakers",
        "Full-grain leather, cup sole.",
        13900,
        [("41", "EU 41", 6), ("42", "EU 42", 9), ("43", "EU 43", 4)],
    ),
    (
        "chelsea-boots",
        "shoes",
        "Chelsea boots",
        "Suede Chelsea boots, Goodyear welted.",
        21900,
        [("41", "EU 41", 3), ("42", "EU 42", 5), ("43", "EU 43", 2)],
    ),
    (
        "canvas-shoes",
        "shoes",
        "Canvas shoes",
        "Vulcanised canvas low-tops.",
        5900,
        [("41", "EU 41", 10), ("42", "EU 42", 10), ("43", "EU 43", 10)],
    ),
    (
        "trail-runners",
        "shoes",
        "Trail runners",
        "Grippy outsole, rock plate.",
        14900,
        [("42", "EU 42", 7), ("43", "EU 43", 0)],
    ),
    ("leather-belt", "accessories", "Leather belt", "Vegetable-tanned leather, brass buckle.", 4500, _ONE),
    ("wool-beanie", "accessories", "Wool beanie", "Merino rib-knit beanie.", 2500, _ONE),
    ("canvas-tote", "accessories", "Canvas tote", "Heavy waxed canvas tote bag.", 3900, _ONE),
    ("sunglasses", "accessories", "Sunglasses", "Acetate frames, polarised lenses.", 8900, _ONE),
    (
        "last-one-wallet",
        "accessories",
        "Card wallet",
        "Slim leather card wallet: the last one.",
        3500,
        [("ONE", "One size", 1)],
    ),
    (
        "sold-out-scarf",
        "accessories",
        "Cashmere scarf",
        "Pure cashmere scarf. Sold out, back soon.",
        9900,
        [("ONE", "One size", 0)],
    ),
    ("ceramic-mug", "home", "Ceramic mug", "Stoneware mug, 350 ml.", 1800, [("ONE", "One size", 60)]),
    ("linen-napkins", "home", "Linen napkins", "Set of four stonewashed napkins.", 2900, _ONE),
    ("scented-candle", "home", "Scented candle", "Soy wax, cedar and fig.", 2400, _ONE),
    ("wool-throw", "home", "Wool throw", "Lambswool throw, 130 × 180 cm.", 11900, [("ONE", "One size", 5)]),
]


def demo_products(currency: str = "EUR") -> list[tuple[StoredProduct, dict[str, int]]]:
    result = []
    for product_id, category, name, description, cents, variants in PRODUCTS:
        stock = {f"{product_id.upper()}-{suffix}": units for suffix, _, units in variants}
        product = StoredProduct(
            id=product_id,
            name=name,
            description=description,
            category=category,
            images=[],
            variants=[
                StoredVariant(
                    sku=f"{product_id.upper()}-{suffix}", title=title, price=Money(amount=cents, currency=currency)
                )
                for suffix, title, _ in variants
            ],
        )
        result.append((product, stock))
    return result


# A cart with a known id, so that every sample event in events/cart/ works as it is. Only in demo data:
# real cart ids are random capabilities.
DEMO_CART_ID = "Zq3K9xV2mB7nR4tY8wE1uI6oP0aS5dFg"
# A pending order (of another cart), for GET /orders/{id} and the samples that reject or cancel it (events/).
DEMO_ORDER_ID = "Dm0oRdEr7kJ3hG8fD5aS2nB6vC1xZ9qW"
DEMO_ORDER_CART_ID = "Ca2tOfTh3DeM0OrDeR5aS8nB1vC4xZ7q"
# A paid order not yet shipped, so that events/fulfilment/ has one to ship (the local carrier ships it).
DEMO_PAID_ORDER_ID = "Pa1dOrDeR3nB6vC1xZ9qWDm0kJ3hG8fD"
DEMO_PAID_ORDER_CART_ID = "Ca2tOfTh3Pa1dOrDeR5aS8nB1vC4xZ7q"
# An order awaiting payment with the payment that events/payment_webhook/webhook-payment-succeeded*.json report
# succeeded, and that events/order_workflow/mark-paid.json and mark-expired.json move on.
DEMO_AWAITING_PAYMENT_ORDER_ID = "b5Xq0J3nW8rT2vY7kZ4mC9pL1sD6fG0h"
DEMO_AWAITING_PAYMENT_ORDER_CART_ID = "Ca2tOfTh3AwA1tPaYmEnT5aS8nB1vC4x"
DEMO_PAYMENT_ID = "pi_3QxYzAbCdEfGhIjKlMnOpQrS"
DEMO_PAYMENT_CLIENT_SECRET = "pi_3QxYzAbCdEfGhIjKlMnOpQrS_secret_Zq3K9xV2mB7nR4tY8wE1uI6oP"
# A fulfilling order (shipped with the local carrier, label created), so that
# events/fulfilment/carrier-webhook-in-transit.json has a shipment to move on: the order becomes shipped.
DEMO_FULFILLING_ORDER_ID = "Fu1fIlL1nG0rDeR4nB6vC1xZ9qWDm0kJ"
DEMO_FULFILLING_ORDER_CART_ID = "Ca2tOfTh3Fu1fIlL1nG0rDeR5aS8nB1v"
DEMO_SHIPMENT_ID = "shp_Lq8Vn3Rt6Yw1Zb4Xc7Pd"
DEMO_TRACKING_NUMBER = "LC402871599316"
# Two orders awaiting payment whose reservations events/stock/commit.json and release.json settle as they are
# (order id -> its cart id); each holds a Linen shirt (M) and two mugs.
DEMO_RESERVATIONS = {
    "Qx7mN2pL9vK4rT8wZ1yB5cD3fG6hJ0sA": "Ca2tOfTh3Qx7mN2pL9vK4rT8wZ1yB5cD",
    "Rl4sE9dM2nB6vC1xZ7kJ3hG8fD5aS0qW": "Ca2tOfTh3Rl4sE9dM2nB6vC1xZ7kJ3hG",
}
RESERVED_LINES = {"LINEN-SHIRT-M": 1, "CERAMIC-MUG-ONE": 2}


def seed(cloud: LocalCloud) -> int:
    """Write the demo catalog, its opening stock, the demo carts and orders; returns the number of products."""
    dynamodb = cloud.client("dynamodb")
    catalog = CatalogRepository(dynamodb, cloud.physical_id("CatalogTable"))
    inventory = InventoryRepository(dynamodb, cloud.physical_id("InventoryTable"))
    for category_id, name in CATEGORIES.items():
        catalog.put_category(Category(id=category_id, name=name))
    products = demo_products()
    image_base_url = cloud.template.parameter("ImageBaseUrl")
    for product, stock in products:
        if image_base_url:  # served by the local gateway, as the edge serves the images bucket on AWS
            product = product.model_copy(update={"images": [f"{image_base_url}/{_put_demo_image(cloud, product.id)}"]})
        catalog.put_product(product)
        for sku, units in stock.items():
            inventory.put_level(sku, units)
    now = datetime.now(UTC)
    carts = CartRepository(dynamodb, cloud.physical_id("CartTable"))
    prices = {variant.sku: variant.price for product, _ in products for variant in product.variants}
    for cart_id, units in [
        (DEMO_CART_ID, {"LINEN-SHIRT-M": 1}),
        (DEMO_ORDER_CART_ID, {"LINEN-SHIRT-M": 1}),
        *((cart_id, RESERVED_LINES) for cart_id in DEMO_RESERVATIONS.values()),
    ]:
        carts.create(
            StoredCart(
                id=cart_id,
                currency="EUR",
                version=3,
                created_at=now,
                updated_at=now,
                expires_at=now + timedelta(days=30),
                lines=[
                    StoredLine(sku=sku, quantity=quantity, seen_price=prices[sku]) for sku, quantity in units.items()
                ],
                shipping=StoredShipping(country="DE", method="standard"),
            )
        )
    pricing = CartService(carts, catalog, inventory, load_shop_config(), timedelta(days=30), lambda: now)
    cart = pricing.get(DEMO_ORDER_CART_ID)
    assert cart.shipping is not None
    orders = OrderRepository(dynamodb, cloud.physical_id("OrdersTable"))
    address = Address(name="Ada Lovelace", line1="Unter den Linden 1", city="Berlin", postal_code="10117", country="DE")

    def demo_order(order_id: str, cart_id: str, priced: Cart, statuses: tuple[OrderStatus, ...]) -> None:
        """An order as checkout and the workflow would have written it, its history up to its status. The orders
        whose carts are gone (as a checked-out cart goes) show the demo order's priced cart."""
        orders.create(
            StoredOrder(
                id=order_id,
                status=statuses[-1],
                cart_id=cart_id,
                email="ada@example.com",
                email_key="ada@example.com",
                lines=priced.lines,
                totals=priced.totals,
                shipping=priced.shipping,
                created_at=now,
                updated_at=now,
                shipping_address=address,
                history=[{"status": status, "at": now} for status in statuses],
            )
        )

    pending = (OrderStatus.PENDING,)
    paid = (OrderStatus.PENDING, OrderStatus.AWAITING_PAYMENT, OrderStatus.PAID)
    demo_order(DEMO_ORDER_ID, cart.id, cart, pending)
    demo_order(DEMO_PAID_ORDER_ID, DEMO_PAID_ORDER_CART_ID, cart, paid)
    demo_order(DEMO_FULFILLING_ORDER_ID, DEMO_FULFILLING_ORDER_CART_ID, cart, paid)
    for order_id, reserved_cart_id in DEMO_RESERVATIONS.items():
        demo_order(order_id, reserved_cart_id, pricing.get(reserved_cart_id), paid[:2])
    demo_order(DEMO_AWAITING_PAYMENT_ORDER_ID, DEMO_AWAITING_PAYMENT_ORDER_CART_ID, cart, pending)
    # The stock each order holds, as its status implies (storefront/orders/reservations_check.py), so that the
    # demo data passes the restore tool's verification: paid orders' units committed, unpaid ones' reserved.
    for order_id, held in [
        (DEMO_PAID_ORDER_ID, cart.lines),
        (DEMO_FULFILLING_ORDER_ID, cart.lines),
        (DEMO_AWAITING_PAYMENT_ORDER_ID, cart.lines),
    ]:
        inventory.reserve(order_id, {line.sku: line.quantity for line in held}, now)
    for order_id in (DEMO_PAID_ORDER_ID, DEMO_FULFILLING_ORDER_ID):
        inventory.commit(order_id, {line.sku: line.quantity for line in cart.lines}, now)
    for order_id in DEMO_RESERVATIONS:
        inventory.reserve(order_id, RESERVED_LINES, now)
    # The payment tasks and fulfilment services record the payment and the shipment, as the workflow's
    # CreatePayment step and the fulfilment queue's consumer would; only the provider and carrier answers are fixed.
    payments = PaymentTasks(
        orders,
        _FixedPayment(cloud.template.parameter("PaymentProvider")),
        StepFunctionsWorkflow(cloud.client("stepfunctions")),
        StockFunctionClient(cloud.client("lambda"), cloud.physical_id("StockFunction")),
        clock=lambda: now,
    )
    carrier = _FixedShipment(cloud.template.parameter("CarrierName"), cloud.carrier)
    with _no_business_metrics():
        payments.create_payment(DEMO_AWAITING_PAYMENT_ORDER_ID)
        FulfilmentService(orders, carrier, webhook_secrets=list, clock=lambda: now).fulfil(DEMO_FULFILLING_ORDER_ID)
    return len(products)


@contextmanager
def _no_business_metrics() -> Iterator[None]:
    """The demo's own records are no business events; and outside a function no metrics namespace is set, so a
    count would raise (a benchmark or `make dev` at INFO seeds with metrics on)."""
    saved = os.environ.get("POWERTOOLS_METRICS_DISABLED")
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("POWERTOOLS_METRICS_DISABLED", None)
        else:
            os.environ["POWERTOOLS_METRICS_DISABLED"] = saved


def _put_demo_image(cloud: LocalCloud, product_id: str) -> str:
    """A picture for a demo product (a diagonal wash in a colour of its own) in the images bucket; returns its key."""
    key = f"images/{product_id}/demo.png"
    cloud.client("s3").put_object(
        Bucket=cloud.physical_id("ProductImagesBucket"),
        Key=key,
        Body=_wash(product_id),
        ContentType="image/png",
        CacheControl=IMAGE_CACHE_CONTROL,
    )
    return key


def _wash(seed_text: str, size: int = 240) -> bytes:
    """A PNG of `size` x `size` pixels fading from a colour picked by `seed_text` to white."""
    hue = (zlib.crc32(seed_text.encode()) % 360) / 360
    red, green, blue = (round(c * 255) for c in colorsys.hls_to_rgb(hue, 0.55, 0.45))
    shades = [bytes(round(c + (255 - c) * step / (2 * size)) for c in (red, green, blue)) for step in range(2 * size)]
    rows = b"".join(b"\x00" + b"".join(shades[x + y] for x in range(size)) for y in range(size))  # filter byte 0

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


class _FixedPayment:
    """The payment provider's answer for the demo order awaiting payment: the payment the sample webhooks name."""

    def __init__(self, name: str) -> None:
        self.name = name

    def create_payment(self, order_id: str, amount: Money, idempotency_key: str) -> CreatedPayment:
        return CreatedPayment(
            payment_id=DEMO_PAYMENT_ID, client_secret=DEMO_PAYMENT_CLIENT_SECRET, status="requires_payment_method"
        )


class _FixedShipment:
    """The carrier's answer for the demo fulfilling order: the shipment the sample tracking webhook names, made by
    the local carrier when it runs (so its tracking page and POST /dev/shipments/<tracking number>/advance work)."""

    def __init__(self, name: str, local: LocalCarrier | None) -> None:
        self.name = name
        self._local = local

    def create_shipment(self, request: ShipmentRequest, idempotency_key: str) -> Shipment:
        if self._local is None:
            return Shipment(
                id=DEMO_SHIPMENT_ID,
                status=TrackingStatus.LABEL_CREATED,
                tracking_number=DEMO_TRACKING_NUMBER,
                reference=request.reference,
                tracking_url=f"https://carrier.example/track/{DEMO_TRACKING_NUMBER}",
            )
        shipment, _ = self._local.create_shipment(
            request.model_dump(mode="json"),
            idempotency_key,
            shipment_id=DEMO_SHIPMENT_ID,
            tracking_number=DEMO_TRACKING_NUMBER,
        )
        return Shipment.model_validate(shipment)
