"""The product images bucket (S3): presigned POSTs, nothing else. The signature is made locally with the function's
credentials, which may put objects under images/ and nothing more (template.yaml)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a development dependency (boto3-stubs[s3]); the Lambda runtime has no need of it
    from mypy_boto3_s3 import S3Client


class S3ImageBucket:
    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def presigned_post(self, key: str, fields: dict[str, str], conditions: list[Any], expires: int) -> dict[str, Any]:
        return self._client.generate_presigned_post(
            Bucket=self._bucket, Key=key, Fields=fields, Conditions=conditions, ExpiresIn=expires
        )
