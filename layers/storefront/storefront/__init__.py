"""The storefront's shared code, shipped to every function as the `storefront` Lambda layer.

One sub-package per bounded context (catalog, inventory, ...), each split into
models (pydantic), service (the rules, no boto3) and repository (DynamoDB only).
Cross-cutting pieces live at the top: config, money, errors, http, pagination, observability.
"""
