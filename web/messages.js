// Turns API problems (RFC 9457 problem+json, see api.js) into sentences a shopper (or an operator, on the admin
// page) can act on.
import { h, replaceChildren } from "./dom.js";

const FIELD_LABELS = {
  email: "Email",
  "shipping_address.name": "Full name",
  "shipping_address.line1": "Address",
  "shipping_address.line2": "Address line 2",
  "shipping_address.city": "City",
  "shipping_address.postal_code": "Postal code",
  "shipping_address.country": "Country",
  cart_id: "Cart",
  quantity: "Quantity",
};

// Validation codes (pydantic's and the shop's) in plain words; the API's own message is the fallback.
const FIELD_PROBLEMS = {
  missing: "is required",
  string_too_short: "is too short",
  string_too_long: "is too long",
  string_pattern_mismatch: "does not look right",
  empty_cart: "has no items yet",
  shipping_required: "needs a shipping method (choose one in the cart)",
  shipping_country_mismatch: "must be the country the shipping method is for",
  less_than_equal: "is too large",
  greater_than_equal: "is too small",
  unknown_category: "is not one of the shop's categories",
  unsupported_currency: "is not a currency the shop sells in",
};
const SPECIFIC = { email: { string_pattern_mismatch: "must be an email address like ada@example.com" } };

// `labels(field)` names fields the shop's own labels do not know (the admin page's), or returns undefined.
export function fieldMessage(error, labels = () => undefined) {
  const field = error.field ?? "";
  const words = SPECIFIC[field]?.[error.code] ?? FIELD_PROBLEMS[error.code] ?? error.message ?? "is not valid";
  const label = labels(field) ?? FIELD_LABELS[field] ?? field.replace(/^.*\./, "").replace(/_/g, " ");
  return `${label} ${words}.`;
}

// {title, items}: a headline and the details, for any ProblemError (or other Error).
// `names` maps SKUs to what the shopper calls them ("Linen shirt – Medium"); `labels` as for fieldMessage.
export function describe(error, names = {}, labels = undefined) {
  const name = (sku) => names[sku] ?? sku;
  switch (error.code) {
    case "network_error":
      return { title: "The shop cannot be reached right now.", items: ["Check your connection and try again."] };
    case "insufficient_stock":
      return {
        title: "Not enough stock.",
        items: error.errors.filter((e) => e.sku).map((e) => (e.available > 0
          ? `${name(e.sku)}: only ${e.available} available.`
          : `${name(e.sku)} is sold out.`)),
      };
    case "validation_error":
    case "empty_cart":
    case "shipping_required":
    case "shipping_country_mismatch":
    case "product_unavailable":
    case "unknown_category":
    case "unsupported_currency":
    case "too_many_images":
    case "too_many_variant_changes":
    case "sku_taken":
      return {
        title: error.code === "validation_error" || !error.message ? "Please check the following." : error.message,
        items: error.errors.map((e) => {
          if (e.field) return fieldMessage(e, labels);
          return e.sku ? `${name(e.sku)}: ${e.message}` : e.message;
        }),
      };
    case "forbidden":
      return { title: "Your account may not do this.", items: [error.message] };
    case "version_conflict":
      return { title: "Your cart was changed in another window.", items: ["It has been reloaded: please try again."] };
    case "not_found":
      return { title: error.message || "Not found.", items: [] };
    case "busy":
    case "request_in_progress":
      return { title: "The shop is busy.", items: ["Please try again in a moment."] };
    case "idempotency_key_reused":
      return { title: "This was sent before with other details.", items: ["Check the form and send it again."] };
    default:
      if (error.status >= 500) {
        return { title: "Something went wrong on our side.", items: ["Please try again in a moment."] };
      }
      return { title: error.message || "Something went wrong.", items: [] };
  }
}

// An always-present alert region: screen readers announce what is put into it (empty, it is not shown).
export function alertBox() {
  return h("div", { class: "alert", role: "alert" });
}

// Shows the error in `box` (from alertBox) and marks the form fields it names; returns the first such field.
export function showError(box, error, { names = {}, fields = {}, labels = undefined } = {}) {
  const { title, items } = describe(error, names, labels);
  replaceChildren(box, h("p", { class: "alert-title" }, title),
    items.length ? h("ul", {}, items.map((item) => h("li", {}, item))) : null);
  let firstInvalid = null;
  for (const e of error.errors ?? []) {
    const input = e.field && fields[e.field];
    if (!input) continue;
    input.setAttribute("aria-invalid", "true");
    const hint = document.getElementById(input.getAttribute("aria-errormessage"));
    if (hint) {
      hint.textContent = fieldMessage(e, labels);
      hint.hidden = false;
    }
    firstInvalid ??= input;
  }
  return firstInvalid;
}

export function clearError(box, fields = {}) {
  box.replaceChildren();
  for (const input of Object.values(fields)) {
    input.removeAttribute("aria-invalid");
    const hint = document.getElementById(input.getAttribute("aria-errormessage"));
    if (hint) {
      hint.textContent = "";
      hint.hidden = true;
    }
  }
}
