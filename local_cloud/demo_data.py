"""The demo data `make dev` serves: five categories, 24 products, variants with prices and stock, one cart.

Written through the same repositories the functions use, so the items have exactly the production shape.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from storefront.cart.models import StoredCart, StoredLine
from storefront.cart.repository import CartRepository
from storefront.catalog.models import Category, StoredProduct, StoredVariant
from storefront.catalog.repository import CatalogRepository
from storefront.inventory.repository import InventoryRepository
from storefront.money import Money

if TYPE_CHECKING:
    from local_cloud.cloud import LocalCloud

CATEGORIES = {
    "shirts": "Shirts", "trousers": "Trousers", "shoes": "Shoes", "accessories": "Accessories", "home": "Home",
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
    ("leather-sneakers", "shoes", "Leather sneakers", "Full-grain leather, cup sole.", 13900,
     [("41", "EU 41", 6), ("42", "EU 42", 9), ("43", "EU 43", 4)]),
    ("chelsea-boots", "shoes", "Chelsea boots", "Suede Chelsea boots, Goodyear welted.", 21900,
     [("41", "EU 41", 3), ("42", "EU 42", 5), ("43", "EU 43", 2)]),
    ("canvas-shoes", "shoes", "Canvas shoes", "Vulcanised canvas low-tops.", 5900,
     [("41", "EU 41", 10), ("42", "EU 42", 10), ("43", "EU 43", 10)]),
    ("trail-runners", "shoes", "Trail runners", "Grippy outsole, rock plate.", 14900,
     [("42", "EU 42", 7), ("43", "EU 43", 0)]),
    ("leather-belt", "accessories", "Leather belt", "Vegetable-tanned leather, brass buckle.", 4500, _ONE),
    ("wool-beanie", "accessories", "Wool beanie", "Merino rib-knit beanie.", 2500, _ONE),
    ("canvas-tote", "accessories", "Canvas tote", "Heavy waxed canvas tote bag.", 3900, _ONE),
    ("sunglasses", "accessories", "Sunglasses", "Acetate frames, polarised lenses.", 8900, _ONE),
    ("last-one-wallet", "accessories", "Card wallet", "Slim leather card wallet: the last one.", 3500,
     [("ONE", "One size", 1)]),
    ("sold-out-scarf", "accessories", "Cashmere scarf", "Pure cashmere scarf. Sold out, back soon.", 9900,
     [("ONE", "One size", 0)]),
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
            id=product_id, name=name, description=description, category=category,
            images=[f"https://images.example.com/storefront/{product_id}.jpg"],
            variants=[StoredVariant(sku=f"{product_id.upper()}-{suffix}", title=title,
                                    price=Money(amount=cents, currency=currency)) for suffix, title, _ in variants],
        )
        result.append((product, stock))
    return result


# A cart with a known id, so that every sample event in events/cart/ works as it is. Only in demo data:
# real cart ids are random capabilities.
DEMO_CART_ID = "Zq3K9xV2mB7nR4tY8wE1uI6oP0aS5dFg"


def seed(cloud: LocalCloud) -> int:
    """Write the demo catalog, its opening stock and the demo cart; returns the number of products."""
    dynamodb = cloud.client("dynamodb")
    catalog = CatalogRepository(dynamodb, cloud.physical_id("CatalogTable"))
    inventory = InventoryRepository(dynamodb, cloud.physical_id("InventoryTable"))
    for category_id, name in CATEGORIES.items():
        catalog.put_category(Category(id=category_id, name=name))
    products = demo_products()
    for product, stock in products:
        catalog.put_product(product)
        for sku, units in stock.items():
            inventory.put_level(sku, units)
    now = datetime.now(UTC)
    CartRepository(dynamodb, cloud.physical_id("CartTable")).create(StoredCart(
        id=DEMO_CART_ID, currency="EUR", version=3, created_at=now, updated_at=now, expires_at=now + timedelta(days=30),
        lines=[StoredLine(sku="LINEN-SHIRT-M", quantity=1, seen_price=Money(amount=5900, currency="EUR"))],
        shipping=None))
    return len(products)
