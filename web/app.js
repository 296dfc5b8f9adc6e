// The demo storefront: a hash router over a few views. Plain ES modules, no build step; config.js says
// where the API is, and the API says the rest about the shop (shop.js, GET /shop).
import { cartView } from "./cart-view.js";
import { itemCount, loadCart } from "./cart.js";
import { catalogView, notFound, productView } from "./catalog.js";
import { checkoutView, LAST_ORDER } from "./checkout.js";
import { shop, shopError } from "./shop.js";
import { h, replaceChildren } from "./dom.js";
import { describe } from "./messages.js";
import { orderView } from "./order.js";

const ROUTES = [
  [/^\/$/, catalogView],
  [/^\/category\/([^/]+)$/, catalogView],
  [/^\/products\/([^/]+)$/, productView],
  [/^\/cart$/, cartView],
  [/^\/checkout$/, checkoutView],
  [/^\/orders\/([^/]+)$/, orderView],
];

const main = document.getElementById("main");
let current = null; // the AbortController of the view on screen: aborting it stops its requests and polling

function navigate(hash) {
  if (window.location.hash === hash) render({ moveFocus: true });
  else window.location.hash = hash;
}

async function render({ moveFocus }) {
  current?.abort();
  const controller = new AbortController();
  current = controller;
  const path = window.location.hash.replace(/^#/, "") || "/";
  const route = ROUTES.find(([pattern]) => pattern.test(path));
  // Each view draws into its own container, which replaces the previous one once it is ready: a view that
  // was left while loading can finish its work without drawing over the page that followed it.
  const view = h("div", { class: "view" });
  main.setAttribute("aria-busy", "true");
  try {
    if (shopError) throw shopError; // the page cannot show prices or countries without the shop's settings
    if (!route) {
      notFound(view, "Page not found", "There is nothing at this address.");
    } else {
      const params = path.match(route[0]).slice(1).map(decodeURIComponent);
      await route[1](view, params, { signal: controller.signal, navigate });
    }
  } catch (error) {
    if (error.name === "AbortError" || controller.signal.aborted) return; // another view took over
    const { title, items } = describe(error);
    replaceChildren(view, h("h1", { tabindex: "-1" }, "Sorry, this page could not be shown"),
      h("div", { class: "alert", role: "alert" }, h("p", { class: "alert-title" }, title),
        items.length ? h("ul", {}, items.map((item) => h("li", {}, item))) : null),
      h("button", { type: "button", class: "button secondary",
        onclick: () => (shopError ? window.location.reload() : render({ moveFocus: true })) }, "Try again"));
  }
  if (controller.signal.aborted) return;
  main.replaceChildren(view);
  main.removeAttribute("aria-busy");
  const heading = view.querySelector("h1");
  document.title = heading ? `${heading.textContent} · ${shop.name}` : shop.name;
  // After navigating, keyboard and screen reader users start at the new page's heading.
  if (moveFocus) heading?.focus();
  updateLastOrderLink();
}

function updateCartLink(cart) {
  const count = itemCount(cart);
  document.querySelector("[data-cart-count]").textContent = String(count);
  document.querySelector("[data-cart-link]").setAttribute("aria-label", `Cart, ${count} ${count === 1 ? "item" : "items"}`);
}

function updateLastOrderLink() {
  const orderId = localStorage.getItem(LAST_ORDER);
  const item = document.querySelector("[data-last-order]");
  item.hidden = !orderId;
  if (orderId) item.querySelector("a").href = `#/orders/${encodeURIComponent(orderId)}`;
}

document.querySelector("[data-shop-name]").textContent = shop.name;
// The skip link must not change the hash (the router owns it): it only moves the focus.
document.querySelector(".skip-link").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});
window.addEventListener("cart-changed", (event) => updateCartLink(event.detail));
window.addEventListener("hashchange", () => render({ moveFocus: true }));
updateCartLink(null);
render({ moveFocus: false });
// The header's count; a failure here is not worth more than a zero in the badge.
loadCart().catch(() => updateCartLink(null));
