// The admin page: a hash router over a few views, behind the operators' sign-in. Plain ES modules, no build step,
// beside the shop in web/ (it reuses its API client, DOM helpers, formats and messages). Served at /manage/: the
// API's routes are /admin/*, which the edge distribution sends to the API (docs/admin.md).
import { h, replaceChildren } from "../dom.js";
import { describe } from "../messages.js";
import { shop, shopError } from "../shop.js";
import { orderView, ordersView } from "./orders.js";
import { newProductView, productView, productsView } from "./products.js";
import { current, SessionEnded, signOut } from "./session.js";
import { signInView } from "./sign-in.js";
import { stockView } from "./stock.js";

const ROUTES = [
  [/^\/products$/, productsView, "products"],
  [/^\/products\/new$/, newProductView, "products"],
  [/^\/products\/([^/]+)$/, productView, "products"],
  [/^\/stock(?:\/([^/]+))?$/, stockView, "stock"],
  [/^\/orders$/, ordersView, "orders"],
  [/^\/orders\/([^/]+)$/, orderView, "orders"],
];

const main = document.getElementById("main");
let currentView = null; // the AbortController of the view on screen: aborting it stops its requests

function location() {
  const [path, query = ""] = window.location.hash.replace(/^#/, "").split("?");
  return { path: path || "/products", query: new URLSearchParams(query) };
}

function navigate(hash) {
  if (window.location.hash === hash) render({ moveFocus: true });
  else window.location.hash = hash;
}

function showOperator() {
  const session = current();
  document.querySelector("[data-admin-nav]").hidden = !session;
  document.querySelector("[data-operator]").hidden = !session;
  if (session) {
    const role = session.groups.includes("admin") ? "admin" : "staff";
    document.querySelector("[data-operator-name]").textContent = `${session.email} (${role})`;
  }
}

async function render({ moveFocus, notice = "" }) {
  currentView?.abort();
  const controller = new AbortController();
  currentView = controller;
  const { path, query } = location();
  const route = ROUTES.find(([pattern]) => pattern.test(path));
  const view = h("div", { class: "view" });
  main.setAttribute("aria-busy", "true");
  showOperator();
  for (const link of document.querySelectorAll("[data-section]")) {
    link.setAttribute("aria-current", route && link.dataset.section === route[2] ? "page" : "false");
  }
  try {
    if (shopError) throw shopError; // prices cannot be shown without the shop's settings
    if (!current()) {
      await signInView(view, { notice, signedIn: () => render({ moveFocus: true }) });
    } else if (!route) {
      replaceChildren(view, h("h1", { tabindex: "-1" }, "Page not found"),
        h("p", {}, h("a", { href: "#/products" }, "See the products")));
    } else {
      const params = path.match(route[0]).slice(1).map((p) => (p === undefined ? p : decodeURIComponent(p)));
      await route[1](view, params, { signal: controller.signal, navigate, query });
    }
  } catch (error) {
    if (error.name === "AbortError" || controller.signal.aborted) return; // another view took over
    if (error instanceof SessionEnded) return; // the session-ended listener shows the sign-in form
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
  document.title = `${heading ? `${heading.textContent} · ` : ""}${shop.name} admin`;
  if (moveFocus) heading?.focus();
}

document.querySelector("[data-shop-name]").textContent = shop.name;
document.querySelector(".skip-link").addEventListener("click", (event) => {
  event.preventDefault(); // the router owns the hash
  main.focus();
});
document.querySelector("[data-sign-out]").addEventListener("click", async () => {
  await signOut();
  render({ moveFocus: true, notice: "You have signed out." });
});
// An API call found the session over (its refresh token expired or was revoked): sign in again, then carry on here.
window.addEventListener("session-ended", () => render({ moveFocus: true,
  notice: "Your session has ended. Sign in again to continue." }));
window.addEventListener("hashchange", () => render({ moveFocus: true }));
render({ moveFocus: false });
