"""Payments: the provider adapter (Stripe's API, or the local cloud's emulator of it), webhook signatures,
webhook handling, and the order workflow's two payment tasks (CreatePayment, WaitForPayment)."""
