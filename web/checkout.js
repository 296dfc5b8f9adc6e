// Checkout: email and address, then POST /checkout with an Idempotency-Key.
//
// The key belongs to one checkout attempt (idempotency.js): sent again when the same order is retried (a network
// error, a reload, a second click), so the API answers with the same order instead of making another. Only a
// changed form is a new attempt, with a new key.
import { api } from "./api.js";
import { forgetCart, loadCart } from "./cart.js";
import { totalsList } from "./cart-view.js";
import { h, replaceChildren, sleep, uniqueId } from "./dom.js";
import { countryName, formatMoney, formatWindow } from "./format.js";
import { attemptDone, keyFor } from "./idempotency.js";
import { alertBox, clearError, showError } from "./messages.js";

const ATTEMPT = "storefront.checkout-attempt";
export const LAST_ORDER = "storefront.last-order";

async function placeOrder(body) {
  const key = await keyFor(ATTEMPT, body);
  for (let tries = 1; ; tries += 1) {
    try {
      return (await api.checkout(body, key)).data;
    } catch (error) {
      // The same key is still being worked on (an earlier click, a retry): wait for its answer.
      if (error.code !== "request_in_progress" || tries >= 10) throw error;
      await sleep(error.retryAfter() * 1000);
    }
  }
}

const FIELDS = [
  // [API field, label, input attributes]
  ["email", "Email", { type: "email", autocomplete: "email", required: true }],
  ["shipping_address.name", "Full name", { autocomplete: "shipping name", required: true }],
  ["shipping_address.line1", "Address", { autocomplete: "shipping address-line1", required: true }],
  ["shipping_address.line2", "Address line 2 (optional)", { autocomplete: "shipping address-line2" }],
  ["shipping_address.postal_code", "Postal code", { autocomplete: "shipping postal-code", required: true }],
  ["shipping_address.city", "City", { autocomplete: "shipping address-level2", required: true }],
];

export async function checkoutView(view, _params, { navigate }) {
  const heading = h("h1", { tabindex: "-1" }, "Checkout");
  const cart = await loadCart();
  if (!cart || cart.lines.length === 0) {
    replaceChildren(view, heading, h("p", {}, "Your cart is empty. ", h("a", { href: "#/" }, "Browse the products")));
    return;
  }
  if (!cart.shipping) {
    replaceChildren(view, heading, h("p", {}, "Choose how your order is shipped first: ",
      h("a", { href: "#/cart" }, "back to the cart")));
    return;
  }

  const errors = alertBox();
  const inputs = {};
  const fields = FIELDS.map(([name, label, attributes]) => {
    const id = uniqueId("field");
    const hintId = `${id}-error`;
    // `required` tells assistive technology; the form is novalidate, so the API's problems are what is shown.
    inputs[name] = h("input", { id, name, ...attributes, "aria-errormessage": hintId, "aria-describedby": hintId });
    return h("div", { class: "field" }, h("label", { for: id }, label), inputs[name],
      h("p", { class: "field-error", id: hintId, hidden: true }));
  });
  const button = h("button", { type: "submit", class: "button primary" }, `Place order · ${formatMoney(cart.totals.total)}`);
  let inFlight = false;

  const form = h("form", { class: "checkout-form", novalidate: true, "aria-labelledby": "checkout-address" },
    h("h2", { id: "checkout-address" }, "Contact and delivery address"),
    fields,
    h("p", { class: "ships-to" }, `Country: ${countryName(cart.shipping.country)} `,
      h("a", { href: "#/cart" }, "(change in the cart)")),
    errors,
    button,
    h("p", { class: "hint" }, "Next you pay on the payment provider's page."));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (inFlight) return; // a double click: the first request is on its way
    inFlight = true;
    button.disabled = true;
    button.textContent = "Placing your order…";
    // Earlier errors stay until the answer replaces them: removing them now would move the button away
    // from under the pointer in the middle of a double click.
    const value = (name) => inputs[name].value.trim();
    const body = {
      cart_id: cart.id,
      email: value("email"),
      shipping_address: {
        name: value("shipping_address.name"),
        line1: value("shipping_address.line1"),
        ...(value("shipping_address.line2") ? { line2: value("shipping_address.line2") } : {}),
        city: value("shipping_address.city"),
        postal_code: value("shipping_address.postal_code"),
        country: cart.shipping.country,
      },
    };
    try {
      const order = await placeOrder(body);
      // The cart has become this order: the next purchase starts a new cart.
      attemptDone(ATTEMPT);
      localStorage.setItem(LAST_ORDER, order.id);
      forgetCart();
      navigate(`#/orders/${encodeURIComponent(order.id)}`);
    } catch (error) {
      const names = Object.fromEntries(cart.lines.map((line) => [line.sku, line.title]));
      clearError(errors, inputs);
      const firstInvalid = showError(errors, error, { names, fields: inputs });
      firstInvalid?.focus();
      inFlight = false;
      button.disabled = false;
      button.textContent = `Place order · ${formatMoney(cart.totals.total)}`;
    }
  });

  replaceChildren(view, heading,
    h("div", { class: "checkout" },
      form,
      h("section", { class: "summary", "aria-labelledby": "checkout-summary" },
        h("h2", { id: "checkout-summary" }, "Your order"),
        h("ul", { class: "summary-lines" }, cart.lines.map((line) => h("li", {},
          h("span", {}, `${line.quantity} × ${line.title}`), h("span", {}, formatMoney(line.line_total))))),
        h("p", { class: "delivery" }, `Estimated delivery: ${formatWindow(cart.shipping.estimated_delivery)}`),
        totalsList(cart.totals))));
}
