"""Per-client limits on checkout: orders holding stock per email and per source IP, units of one SKU per order."""
