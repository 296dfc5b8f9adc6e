# Moved to storefront.webhooks.signatures; kept only until local_cloud/fake_payments.py imports it from there.
from storefront.webhooks.signatures import sign  # noqa: F401
