"""shop.json is valid, and the validator refuses the mistakes a shop owner could make in it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError
from storefront.shop import DEFAULT_FILE, ShopConfig, load_shop_config


def test_the_shipped_configuration_is_valid() -> None:
    from babel import Locale
    from storefront.notifications.content import languages

    shop = load_shop_config()
    assert Locale.parse(shop.locale, sep="-").language in languages(), "customer emails would not be in its language"
    assert shop.name and shop.support.email and shop.address.city
    assert shop.currency in shop.currencies
    assert {"standard", "express"} <= {m.id for m in shop.countries["DE"].methods}
    assert any(m.free_over for m in shop.countries["DE"].methods)


def _config(**changes: Any) -> dict[str, Any]:
    data = json.loads(DEFAULT_FILE.read_text())
    data.update(changes)
    return data


@pytest.mark.parametrize(
    "changes",
    [
        {"currency": "USD"},  # not among currencies
        {"currencies": ["EUR", "XYZ"]},  # not ISO 4217 / unsupported
        {"default_country": "US"},  # not configured
        {"timezone": "Mars/Olympus"},
        {"dispatch_cutoff_hour": 24},
        {
            "countries": {
                "DE": {
                    "name": "Germany",
                    "tax_rate_bp": 1900,
                    "methods": [
                        {
                            "id": "standard",
                            "name": "A",
                            "price": {"amount": 1, "currency": "EUR"},
                            "delivery_days": {"min": 3, "max": 1},
                        }
                    ],
                }
            }
        },
        {
            "countries": {
                "DE": {
                    "name": "Germany",
                    "tax_rate_bp": 1900,
                    "methods": [
                        {
                            "id": "standard",
                            "name": "A",
                            "price": {"amount": 1, "currency": "GBP"},
                            "delivery_days": {"min": 1, "max": 1},
                        }
                    ],
                }
            }
        },
        {
            "countries": {
                "DE": {
                    "name": "Germany",
                    "tax_rate_bp": 1900,
                    "methods": [
                        {
                            "id": "x",
                            "name": "A",
                            "price": {"amount": 1, "currency": "EUR"},
                            "delivery_days": {"min": 1, "max": 1},
                        },
                        {
                            "id": "x",
                            "name": "B",
                            "price": {"amount": 2, "currency": "EUR"},
                            "delivery_days": {"min": 1, "max": 1},
                        },
                    ],
                }
            }
        },
        {"unknown_key": 1},
        {"name": ""},
        {"name": "Shop\r\nBcc: someone@example.com"},  # would break into a mail header
        {"name": "\u202epohS"},  # a bidi override
        {"locale": "german"},
        {"locale": "de_DE"},
        {"support": {"email": "help@example.com, other@example.com"}},
        {"support": {"email": "help@example.com", "url": "javascript:alert(1)"}},
        {"support": {"email": "help@example.com", "url": "http://plain.example"}},  # https only
        {
            "address": {
                "company": "Shop GmbH",
                "line1": "Main St 1",
                "postal_code": "10115",
                "city": "Berlin",
                "country": "Germany",
            }
        },
        {
            "checkout_limits": {
                "orders_holding_stock_per_email": 0,
                "orders_holding_stock_per_ip": 20,
                "units_per_sku": 10,
            }
        },
        {
            "checkout_limits": {
                "orders_holding_stock_per_email": 3,
                "orders_holding_stock_per_ip": 20,
                "units_per_sku": 100,
            }
        },
        {"checkout_limits": {"orders_holding_stock_per_email": 3, "units_per_sku": 10}},
    ],
)
def test_mistakes_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises((ValidationError, ValueError)):
        ShopConfig.model_validate(_config(**changes))


def test_the_committed_json_schema_is_the_models() -> None:
    from storefront.shop import SCHEMA_FILE, json_schema

    assert SCHEMA_FILE.read_text(encoding="utf-8") == json_schema(), (
        "shop.schema.json is stale: PYTHONPATH=layers/storefront python -m storefront.shop > "
        "layers/storefront/storefront/shop.schema.json"
    )


def test_the_json_schema_accepts_shop_json_and_refuses_what_the_model_refuses() -> None:
    import jsonschema
    from storefront.shop import SCHEMA_FILE

    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))
    data = json.loads(DEFAULT_FILE.read_text(encoding="utf-8"))
    assert data["$schema"] == "./shop.schema.json"  # editors that follow it validate as the shop loads
    assert list(validator.iter_errors(data)) == []
    for broken in (
        {**data, "unknown": 1},
        {**data, "dispatch_cutoff_hour": 24},
        {**data, "locale": "de_DE"},
        {k: v for k, v in data.items() if k != "currency"},
    ):
        assert list(validator.iter_errors(broken)), broken
        with pytest.raises(ValidationError):
            ShopConfig.model_validate(broken)
