"""The audit log: who changed what in the merchant's admin, when, and how (storefront.audit.log)."""
