"""Operator tools for a deployed storefront stack (and the local cloud): run with `python -m ops.<tool>`."""
