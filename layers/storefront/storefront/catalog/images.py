"""Product images: uploads go straight from the operator's browser to the private images bucket through a presigned
POST whose policy allows one object (this key, this content type, at most the declared size, 5 MB at most); shoppers
get images through the CloudFront distribution that serves the bucket (docs/architecture.md, "Product images").

Keys are images/<product id>/<random>.<ext>: never reused, so an image URL can be cached for a year.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from storefront.catalog.admin import CatalogAdmin
from storefront.errors import NotConfigured

MAX_IMAGE_BYTES = 5 * 1024 * 1024
UPLOAD_SECONDS = 600  # how long the presigned POST may be used
# Written with each image (a policy condition): its key is never reused, so caches may keep it for good.
IMAGE_CACHE_CONTROL = "public, max-age=31536000, immutable"
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


class ImageUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    content_type: Literal["image/jpeg", "image/png", "image/webp"]
    size: Annotated[int, Field(strict=True, ge=1, le=MAX_IMAGE_BYTES, description="The file's size in bytes")]


class PresignedPost(BaseModel):
    url: str = Field(description="POST a multipart/form-data body here: every field below, then the file as `file`")
    fields: dict[str, str]


class ImageUploadTicket(BaseModel):
    upload: PresignedPost
    image_url: str = Field(description="Where shoppers will get the image once uploaded (already in `images`)")


class ImageBucket(Protocol):
    def presigned_post(
        self, key: str, fields: dict[str, str], conditions: list[Any], expires: int
    ) -> dict[str, Any]: ...


class ProductImages:
    def __init__(self, bucket: ImageBucket, catalog: CatalogAdmin, base_url: str) -> None:
        self._bucket = bucket
        self._catalog = catalog
        self._base_url = base_url

    def start_upload(self, actor: Any, product_id: str, request: ImageUpload) -> ImageUploadTicket:
        """The product's images gain the new image's URL at once; the upload it is for may follow within
        UPLOAD_SECONDS (until then the URL finds nothing)."""
        if not self._base_url:
            raise NotConfigured("This stack serves no product images: its ImageBaseUrl parameter is empty.")
        key = f"images/{product_id}/{secrets.token_urlsafe(16)}.{EXTENSIONS[request.content_type]}"
        image_url = f"{self._base_url}/{key}"
        self._catalog.add_image(actor, product_id, image_url)
        fields = {"Content-Type": request.content_type, "Cache-Control": IMAGE_CACHE_CONTROL}
        # The bucket and the exact key are conditions too (the presigner adds them).
        conditions: list[Any] = [
            {"Content-Type": request.content_type},
            {"Cache-Control": IMAGE_CACHE_CONTROL},
            ["content-length-range", 1, request.size],
        ]
        post = self._bucket.presigned_post(key, fields, conditions, UPLOAD_SECONDS)
        return ImageUploadTicket(upload=PresignedPost(url=post["url"], fields=post["fields"]), image_url=image_url)
