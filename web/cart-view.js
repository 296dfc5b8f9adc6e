// The cart: quantities, shipping country and method (with delivery windows), warnings and totals.
import { api } from "./api.js";
import { cartApi, loadCart } from "./cart.js";
import { shop } from "./shop.js";
import { announce, h, replaceChildren, uniqueId } from "./dom.js";
import { countryName, formatMoney, formatWindow } from "./format.js";
import { alertBox, clearError, showError } from "./messages.js";

const percent = new Intl.NumberFormat(shop.locale, { style: "percent", maximumFractionDigits: 2 });

export function totalsList(totals, { shippingChosen = true } = {}) {
  const rate = percent.format(totals.tax_rate_bp / 10000);
  const row = (key, term, value) => h("div", { class: `total-row total-${key}` },
    h("dt", {}, term), h("dd", { dataset: { total: key } }, value));
  return h("dl", { class: "totals" },
    row("subtotal", "Subtotal", formatMoney(totals.subtotal)),
    row("shipping", "Shipping", shippingChosen
      ? (totals.shipping.amount === 0 ? "Free" : formatMoney(totals.shipping)) : "Choose a method below"),
    row("tax", totals.tax_included ? `Includes VAT (${rate})` : `Tax (${rate})`, formatMoney(totals.tax)),
    row("total", "Total", formatMoney(totals.total)));
}

export async function cartView(view, _params, { signal }) {
  const errors = alertBox();
  const methodsByCountry = new Map();
  let cart = await loadCart();
  let country = cart?.shipping?.country ?? shop.default_country;
  let busy = false;

  const methodsFor = async (code) => {
    if (!methodsByCountry.has(code)) methodsByCountry.set(code, (await api.shippingMethods(code, signal)).data.items);
    return methodsByCountry.get(code);
  };

  // Runs a cart change, then draws the cart again with the focus back on the control that was used.
  const run = async (changeCart, message) => {
    if (busy) return;
    busy = true;
    const focusKey = document.activeElement?.dataset?.focusKey;
    clearError(errors);
    view.setAttribute("aria-busy", "true");
    try {
      const { cart: updated, reloaded } = await changeCart();
      cart = updated;
      announce(reloaded ? `Your cart had changed in another window; it was reloaded and ${message}.` : `Cart updated: ${message}.`);
    } catch (error) {
      if (error.code === "version_conflict" || error.status === 404) cart = await loadCart().catch(() => cart);
      showError(errors, error, { names: Object.fromEntries((cart?.lines ?? []).map((l) => [l.sku, l.title])) });
    } finally {
      busy = false;
      view.removeAttribute("aria-busy");
    }
    await draw();
    // The control used may now be disabled (− at quantity 1): then its line's quantity field takes the focus.
    const enabled = (key) => {
      const element = key && view.querySelector(`[data-focus-key="${CSS.escape(key)}"]`);
      return element && !element.disabled ? element : null;
    };
    const sku = /^(?:increase|decrease):(.+)$/.exec(focusKey ?? "")?.[1];
    (enabled(focusKey) ?? enabled(sku && `quantity:${sku}`) ?? view.querySelector("h1")).focus();
  };

  const draw = async () => {
    const heading = h("h1", { tabindex: "-1" }, "Your cart");
    if (!cart || cart.lines.length === 0) {
      replaceChildren(view, heading, errors,
        h("p", {}, "Your cart is empty. ", h("a", { href: "#/" }, "Browse the products")));
      return;
    }
    const methods = await methodsFor(country).catch((error) => {
      showError(errors, error);
      return [];
    });
    const titles = Object.fromEntries(cart.lines.map((line) => [line.sku, line.title]));
    replaceChildren(view, heading, errors,
      cart.warnings.length ? h("div", { class: "warnings", role: "status" },
        h("ul", {}, cart.warnings.map((w) => h("li", {}, `${titles[w.sku] ?? w.sku}: ${w.message}`)))) : null,
      h("section", { "aria-labelledby": "cart-lines" },
        h("h2", { id: "cart-lines", class: "visually-hidden" }, "Items"),
        h("ul", { class: "lines" }, cart.lines.map((line) => lineItem(line, run)))),
      shippingForm(cart, country, methods, {
        onCountry: async (code) => {
          country = code;
          await draw();
          view.querySelector('[data-focus-key="country"]').focus();
        },
        onMethod: (method) => run(() => cartApi.chooseShipping(country, method.id), `shipping is ${method.name}`),
      }),
      h("section", { class: "summary", "aria-labelledby": "cart-totals" },
        h("h2", { id: "cart-totals" }, "Order summary"),
        totalsList(cart.totals, { shippingChosen: Boolean(cart.shipping) }),
        cart.shipping && cart.shipping.country === country
          ? h("a", { class: "button primary", href: "#/checkout" }, "Proceed to checkout")
          : h("p", { class: "hint" }, `Choose a shipping method for ${countryName(country)} to check out.`)));
  };

  await draw();
}

function lineItem(line, run) {
  const quantityId = uniqueId("line-quantity");
  const set = (quantity) => run(() => cartApi.setQuantity(line.sku, quantity),
    quantity === 0 ? `${line.title} removed` : `${line.title}, quantity ${quantity}`);
  const input = h("input", {
    id: quantityId, type: "number", inputmode: "numeric", min: "0", max: "99", value: String(line.quantity),
    dataset: { focusKey: `quantity:${line.sku}` },
  });
  input.addEventListener("change", () => {
    const quantity = Number(input.value);
    if (Number.isInteger(quantity) && quantity >= 0 && quantity <= 99) set(quantity);
    else input.value = String(line.quantity); // not a quantity: put the real one back
  });
  return h("li", { class: "line" },
    h("div", { class: "line-info" },
      h("a", { href: `#/products/${encodeURIComponent(line.product_id)}`, class: "line-title" }, line.title),
      h("span", { class: "unit-price" }, `${formatMoney(line.unit_price)} each`)),
    h("div", { class: "quantity-control" },
      h("label", { for: quantityId, class: "visually-hidden" }, `Quantity of ${line.title}`),
      h("button", { type: "button", class: "step", "aria-label": `Decrease quantity of ${line.title}`,
        disabled: line.quantity <= 1, dataset: { focusKey: `decrease:${line.sku}` },
        onclick: () => set(line.quantity - 1) }, "−"),
      input,
      h("button", { type: "button", class: "step", "aria-label": `Increase quantity of ${line.title}`,
        disabled: line.quantity >= 99, dataset: { focusKey: `increase:${line.sku}` },
        onclick: () => set(line.quantity + 1) }, "+")),
    h("span", { class: "line-total", dataset: { lineTotal: line.sku } }, formatMoney(line.line_total)),
    h("button", { type: "button", class: "link-button", "aria-label": `Remove ${line.title}`,
      onclick: () => run(() => cartApi.remove(line.sku), `${line.title} removed`) }, "Remove"));
}

function shippingForm(cart, country, methods, { onCountry, onMethod }) {
  const countryId = uniqueId("country");
  const chosen = cart.shipping?.country === country ? cart.shipping.method : null;
  const select = h("select", { id: countryId, autocomplete: "shipping country", dataset: { focusKey: "country" } },
    shop.countries.map(({ code }) => h("option", { value: code, selected: code === country }, countryName(code))));
  select.addEventListener("change", () => onCountry(select.value));
  return h("section", { class: "shipping", "aria-labelledby": "cart-shipping" },
    h("h2", { id: "cart-shipping" }, "Shipping"),
    h("div", { class: "field" }, h("label", { for: countryId }, "Country"), select),
    h("fieldset", {},
      h("legend", {}, "Delivery method"),
      methods.length === 0 ? h("p", {}, `No delivery to ${countryName(country)}.`) : null,
      methods.map((method) => {
        const id = uniqueId("method");
        const free = method.free_over && cart.totals.subtotal.amount >= method.free_over.amount;
        const radio = h("input", { type: "radio", name: "shipping-method", id, value: method.id,
          checked: method.id === chosen, dataset: { focusKey: `method:${method.id}` } });
        radio.addEventListener("change", () => onMethod(method));
        const days = method.delivery_days.min === method.delivery_days.max
          ? `${method.delivery_days.min} business day${method.delivery_days.min === 1 ? "" : "s"}`
          : `${method.delivery_days.min}–${method.delivery_days.max} business days`;
        return h("div", { class: "choice method" }, radio,
          h("label", { for: id },
            h("span", { class: "choice-title" }, method.name),
            h("span", { class: "price" }, free ? "Free" : formatMoney(method.price)),
            h("span", { class: "delivery" }, `Arrives ${formatWindow(method.estimated_delivery)} (${days})`),
            method.free_over && !free ? h("span", { class: "hint" }, `Free from ${formatMoney(method.free_over)}`) : null));
      })));
}
