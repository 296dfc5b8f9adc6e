"""The payment provider adapter: Stripe's official SDK (`StripeClient`), for Stripe and the local emulator.

Only the functions that move money import this module (the SDK, and the secret API key, stay out of the public
webhook receiver; tests/unit/test_payment_imports.py checks). The SDK retries network errors, 409s and 5xx
itself, with the idempotency key we give, so a retry never creates a second PaymentIntent or refund; what is
still failing after `max_retries` is PaymentProviderUnavailable, which the workflow or the reconciler retries
later with the same key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from storefront import snapstart
from storefront.money import Money
from storefront.payments.models import CreatedPayment, ProviderPayment, ProviderRefund
from storefront.payments.providers import PaymentProviderError, PaymentProviderUnavailable

if TYPE_CHECKING:
    import stripe

snapstart.prime("stripe")  # imported at the first request (below), or before a SnapStart snapshot

# Stripe's answer when an intent cannot be canceled in its state (succeeded, processing, canceled already).
NOT_CANCELABLE = "payment_intent_unexpected_state"


class StripeProvider:
    def __init__(
        self,
        api_base: str,
        api_key: str | Callable[[], str],
        *,
        name: str = "stripe",
        timeout: float = 10.0,
        max_retries: int = 2,
    ) -> None:
        self.name = name
        self._api_base = api_base.rstrip("/")
        # A callable is read on each request, so a rotated key (cached by storefront.secrets) is picked up.
        self._api_key = api_key if callable(api_key) else (lambda: api_key)
        self._timeout = timeout
        self._max_retries = max_retries
        self._clients: dict[str, stripe.StripeClient] = {}

    def create_payment(self, order_id: str, amount: Money, idempotency_key: str) -> CreatedPayment:
        intent = self._call(
            lambda client: client.v1.payment_intents.create(
                params={
                    "amount": amount.amount,  # Stripe takes minor units too, with ISO 4217's exponents
                    "currency": amount.currency.lower(),
                    "metadata": {"order_id": order_id},
                    "automatic_payment_methods": {"enabled": True},
                },
                options={"idempotency_key": idempotency_key},
            )
        )
        fields = intent.to_dict()  # StripeObjects are not dicts; a plain copy for the optional parts
        redirect = ((fields.get("next_action") or {}).get("redirect_to_url") or {}).get("url")
        return CreatedPayment(
            payment_id=intent.id,
            client_secret=fields.get("client_secret"),
            status=fields.get("status", "unknown"),
            redirect_url=redirect,
        )

    def payment(self, payment_id: str) -> ProviderPayment:
        return _payment(self._call(lambda client: client.v1.payment_intents.retrieve(payment_id)))

    def cancel_payment(self, payment_id: str) -> ProviderPayment:
        """Cancel the intent, so it can never be paid; an intent Stripe will not cancel (it succeeded, is processing,
        or is canceled already) is returned as it is: the caller decides what its status means.

        No idempotency key of ours: Stripe replays a key's FIRST answer for 24 hours, errors included, so a key per
        intent would replay "processing, not cancelable" after the intent went back to requires_payment_method, and
        leave it payable. Cancelling is idempotent by itself ("canceled already" is read back below); the SDK gives
        each call a key of its own for its network retries."""
        try:
            return _payment(
                self._call(
                    lambda client: client.v1.payment_intents.cancel(
                        payment_id, params={"cancellation_reason": "abandoned"}
                    )
                )
            )
        except PaymentProviderError as refused:
            if refused.code != NOT_CANCELABLE or isinstance(refused, PaymentProviderUnavailable):
                raise
            return self.payment(payment_id)

    def refund(self, payment_id: str, amount: Money, idempotency_key: str, metadata: dict[str, str]) -> ProviderRefund:
        return _refund(
            self._call(
                lambda client: client.v1.refunds.create(
                    params={
                        "payment_intent": payment_id,
                        "amount": amount.amount,
                        "reason": "requested_by_customer",
                        "metadata": metadata,
                    },
                    options={"idempotency_key": idempotency_key},
                )
            )
        )

    def refund_status(self, refund_id: str) -> ProviderRefund:
        return _refund(self._call(lambda client: client.v1.refunds.retrieve(refund_id)))

    def _call(self, request: Callable[[stripe.StripeClient], Any]) -> Any:
        # The SDK is imported at the first request, not with the module: ~70 ms of a cold start that the order admin
        # function needs only for refunds (docs/benchmarks.md, part 7); SnapStart copies have it from their snapshot.
        import stripe

        try:
            return request(self._client())
        except (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError) as error:
            raise PaymentProviderUnavailable(
                f"payment provider unavailable after {self._max_retries + 1} attempts: {error.user_message or error}",
                error.http_status,
                error.code,
            ) from error
        except stripe.StripeError as error:
            raise PaymentProviderError(
                f"payment provider refused the request ({error.http_status} "
                f"{type(error).__name__}): {error.user_message or error}",
                error.http_status,
                error.code,
            ) from error

    def _client(self) -> stripe.StripeClient:
        """A client per API key: a rotated key gets its own (the old one is dropped)."""
        import stripe

        api_key = self._api_key()
        client = self._clients.get(api_key)
        if client is None:
            client = stripe.StripeClient(
                api_key,
                base_addresses={"api": self._api_base},
                max_network_retries=self._max_retries,
                http_client=stripe.RequestsClient(timeout=self._timeout),
            )
            self._clients = {api_key: client}
        return client


def _payment(intent: Any) -> ProviderPayment:
    return ProviderPayment(
        payment_id=intent.id, status=intent.status, amount=intent.amount, currency=intent.currency.upper()
    )


def _refund(refund: Any) -> ProviderRefund:
    return ProviderRefund(refund_id=refund.id, status=refund.status, amount=refund.amount)
