"""Configuration: read from environment variables once, into one validated object per function.

template.yaml is the only place that sets these variables on AWS; the local cloud reads the same
template, so a variable missing here is missing there too and fails fast at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Self

from pydantic import BaseModel, ConfigDict, Field


class _EnvSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        return cls.model_validate(dict(os.environ if environ is None else environ))


class CatalogSettings(_EnvSettings):
    catalog_table: str = Field(alias="CATALOG_TABLE", min_length=3)
    inventory_table: str = Field(alias="INVENTORY_TABLE", min_length=3)
    # Secrets Manager secret (ARN or name) whose value signs pagination cursors.
    cursor_secret_id: str = Field(alias="CURSOR_SECRET_ID", min_length=1)
    # How long browsers and CDNs may cache catalog responses; availability is in them, so keep it short.
    cache_max_age: int = Field(alias="CATALOG_CACHE_SECONDS", default=30, ge=0, le=86_400)


class CartSettings(_EnvSettings):
    cart_table: str = Field(alias="CART_TABLE", min_length=3)
    catalog_table: str = Field(alias="CATALOG_TABLE", min_length=3)
    inventory_table: str = Field(alias="INVENTORY_TABLE", min_length=3)
    # A cart untouched this long expires (DynamoDB TTL deletes it later; reads treat it as gone at once).
    idle_hours: int = Field(alias="CART_IDLE_HOURS", default=72, ge=1, le=24 * 90)
