"""The product images bucket (S3): presigned POSTs, nothing else. The signature is made locally with the function's
credentials, which may put objects under images/ and nothing more (template.yaml)."""

from __future__ import annotations

from typing import Any


class S3ImageBucket:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def presigned_post(self, key: str, fields: dict[str, str], conditions: list[Any], expires: int) -> dict[str, Any]:
        return self._client.generate_presigned_post(
            Bucket=self._bucket, Key=key, Fields=fields, Conditions=conditions, ExpiresIn=expires
        )
