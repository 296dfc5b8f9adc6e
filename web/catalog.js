// Browsing: the product list (all, or one category; "Show more" follows the API's cursor) and a product page.
import { api } from "./api.js";
import { cartApi, itemCount } from "./cart.js";
import { config } from "./config.js";
import { announce, h, replaceChildren, uniqueId } from "./dom.js";
import { formatMoney } from "./format.js";
import { alertBox, clearError, showError } from "./messages.js";

const productHref = (id) => `#/products/${encodeURIComponent(id)}`;
const categoryHref = (id) => (id ? `#/category/${encodeURIComponent(id)}` : "#/");

export async function catalogView(view, [categoryId], { signal }) {
  const [categories, firstPage] = await Promise.all([
    api.categories(signal),
    api.products({ category: categoryId, limit: config.pageSize }, signal),
  ]);
  const category = categories.data.items.find((c) => c.id === categoryId);
  if (categoryId && !category) {
    notFound(view, "No such category", "This category does not exist.");
    return;
  }
  const title = category ? category.name : "All products";

  const errors = alertBox();
  const list = h("ul", { class: "product-grid" });
  const more = h("button", { type: "button", class: "button secondary" }, "Show more products");
  let cursor = firstPage.data.next_cursor;
  const show = (products) => {
    const cards = products.map(productCard);
    list.append(...cards);
    more.hidden = !cursor;
    return cards;
  };
  more.addEventListener("click", async () => {
    clearError(errors);
    more.disabled = true;
    more.textContent = "Loading…";
    try {
      const page = await api.products({ category: categoryId, cursor, limit: config.pageSize }, signal);
      cursor = page.data.next_cursor;
      const cards = show(page.data.items);
      // Keyboard users continue where the new products start, not at a button that may now be gone.
      cards[0]?.querySelector("a")?.focus();
      announce(`${cards.length} more products shown.`);
    } catch (error) {
      if (error.name !== "AbortError") showError(errors, error);
    } finally {
      more.disabled = false;
      more.textContent = "Show more products";
    }
  });
  show(firstPage.data.items);

  replaceChildren(view,
    h("h1", { tabindex: "-1" }, title),
    h("nav", { "aria-label": "Categories", class: "categories" },
      h("ul", {}, [{ id: null, name: "All" }, ...categories.data.items].map((c) => h("li", {},
        h("a", { href: categoryHref(c.id), "aria-current": c.id === (categoryId ?? null) ? "page" : null }, c.name))))),
    errors,
    firstPage.data.items.length ? list : h("p", {}, "Nothing here yet."),
    more);
}

function productCard(product) {
  const prices = product.variants.map((v) => v.price);
  const cheapest = prices.reduce((low, price) => (price.amount < low.amount ? price : low), prices[0]);
  const varies = new Set(prices.map((p) => p.amount)).size > 1;
  const inStock = product.variants.some((v) => v.in_stock);
  return h("li", { class: "product-card" },
    thumbnail(product),
    h("h2", {}, h("a", { href: productHref(product.id) }, product.name)),
    cheapest ? h("p", { class: "price" }, `${varies ? "from " : ""}${formatMoney(cheapest)}`) : null,
    h("p", { class: inStock ? "stock" : "stock sold-out" }, inStock ? "In stock" : "Sold out"));
}

function thumbnail(product, size = "small") {
  if (product.images?.[0]) {
    return h("img", { class: `thumb ${size}`, src: product.images[0], alt: "", loading: "lazy" });
  }
  // Without a picture a coloured initial stands in; decorative, so hidden from screen readers.
  const hue = [...product.id].reduce((hash, c) => (hash * 31 + c.charCodeAt(0)) >>> 0, 7) % 6;
  return h("div", { class: `thumb ${size} hue-${hue}`, "aria-hidden": "true" }, product.name.charAt(0));
}

function stockText(variant) {
  if (!variant.in_stock || variant.available <= 0) return "Sold out";
  if (variant.available <= 5) return `Only ${variant.available} left`;
  return "In stock";
}

export async function productView(view, [productId], { signal }) {
  let product;
  try {
    product = (await api.product(productId, signal)).data;
  } catch (error) {
    if (error.status === 404) {
      notFound(view, "Product not found", "This product does not exist (any more).");
      return;
    }
    throw error;
  }
  const errors = alertBox();
  const added = h("p", { class: "notice", role: "status" });
  const firstAvailable = product.variants.find((v) => v.in_stock);
  const hintId = uniqueId("quantity-error");
  const quantity = h("input", {
    id: uniqueId("quantity"), name: "quantity", type: "number", inputmode: "numeric", min: "1", max: "99",
    value: "1", required: true, "aria-errormessage": hintId, "aria-describedby": hintId,
  });
  const button = h("button", { type: "submit", class: "button primary", disabled: !firstAvailable },
    firstAvailable ? "Add to cart" : "Sold out");
  const variantName = (variant) => (product.variants.length > 1 ? `${product.name} – ${variant.title}` : product.name);

  const form = h("form", { class: "buy", novalidate: true },
    h("fieldset", {},
      h("legend", {}, product.variants.length > 1 ? "Choose a variant" : "Variant"),
      product.variants.map((variant) => {
        const id = uniqueId("variant");
        return h("div", { class: "choice" },
          h("input", { type: "radio", name: "sku", id, value: variant.sku, checked: variant === firstAvailable,
            disabled: !variant.in_stock }),
          h("label", { for: id },
            h("span", { class: "choice-title" }, variant.title),
            h("span", { class: "price" }, formatMoney(variant.price)),
            h("span", { class: variant.in_stock ? "stock" : "stock sold-out" }, stockText(variant))));
      })),
    h("div", { class: "field quantity" },
      h("label", { for: quantity.id }, "Quantity"), quantity,
      h("p", { class: "field-error", id: hintId, hidden: true })),
    button);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError(errors, { quantity });
    added.textContent = "";
    const variant = product.variants.find((v) => v.sku === form.elements.sku.value);
    const count = Number(quantity.value);
    if (!variant) {
      showError(errors, { code: "validation_error", errors: [{ message: "Choose a variant first." }] });
      return;
    }
    if (!Number.isInteger(count) || count < 1 || count > 99) {
      showError(errors, { code: "validation_error", errors: [{ field: "quantity", code: "range", message: "must be a whole number from 1 to 99" }] },
        { fields: { quantity } });
      quantity.focus();
      return;
    }
    button.disabled = true;
    button.textContent = "Adding…";
    try {
      const { cart } = await cartApi.add(variant.sku, count);
      replaceChildren(added, `Added ${count} × ${variantName(variant)} to your cart. `,
        h("a", { href: "#/cart" }, `View cart (${itemCount(cart)} ${itemCount(cart) === 1 ? "item" : "items"})`));
    } catch (error) {
      showError(errors, error, { names: { [variant.sku]: variantName(variant) }, fields: { quantity } });
    } finally {
      button.disabled = false;
      button.textContent = "Add to cart";
    }
  });

  replaceChildren(view,
    h("p", { class: "breadcrumb" }, h("a", { href: categoryHref(product.category) }, "← Back to the list")),
    h("article", { class: "product" },
      thumbnail(product, "large"),
      h("div", { class: "product-text" },
        h("h1", { tabindex: "-1" }, product.name),
        h("p", { class: "description" }, product.description),
        form, errors, added)));
}

export function notFound(view, title, text) {
  replaceChildren(view, h("h1", { tabindex: "-1" }, title), h("p", {}, text, " ", h("a", { href: "#/" }, "See all products")));
}
