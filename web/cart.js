// The shopper's guest cart: its id lives in localStorage (it is a capability: whoever has it has the cart).
// Every change goes through `change`, which sends the version it last saw and copes with the two ways
// that version can be stale: another tab changed the cart (412), or the cart expired (404).
import { api } from "./api.js";

const CART_KEY = "storefront.cart";
let current = null; // the last Cart the API returned

function remember(cart) {
  current = cart;
  localStorage.setItem(CART_KEY, cart.id);
  window.dispatchEvent(new CustomEvent("cart-changed", { detail: cart }));
  return cart;
}

export function forgetCart() {
  current = null;
  localStorage.removeItem(CART_KEY);
  window.dispatchEvent(new CustomEvent("cart-changed", { detail: null }));
}

export function itemCount(cart) {
  return cart ? cart.lines.reduce((sum, line) => sum + line.quantity, 0) : 0;
}

// The cart as the API has it now (prices, stock warnings and totals are recomputed on every read), or null.
export async function loadCart() {
  const id = localStorage.getItem(CART_KEY);
  if (!id) return null;
  try {
    return remember((await api.cart(id)).data);
  } catch (error) {
    if (error.status === 404) { // expired or unknown: start afresh next time something is added
      forgetCart();
      return null;
    }
    throw error;
  }
}

async function cartToChange({ create }) {
  const cart = current ?? (await loadCart());
  if (cart || !create) return cart;
  return remember((await api.createCart()).data);
}

// Applies `mutation(cart)` (an api.* call) to the latest cart. Returns {cart, reloaded}: reloaded is true when
// the cart had changed elsewhere, was read again, and the change was applied to the new version.
export async function change(mutation, { create = false } = {}) {
  let reloaded = false;
  for (let attempt = 0; ; attempt += 1) {
    const cart = await cartToChange({ create });
    if (!cart) throw Object.assign(new Error("Your cart is empty."), { code: "no_cart" });
    try {
      return { cart: remember((await mutation(cart)).data), reloaded };
    } catch (error) {
      if (attempt > 0) throw error;
      if (error.code === "version_conflict") { // someone (another tab) changed it: read it again, then retry once
        await loadCart();
        reloaded = true;
      } else if (error.status === 404 && error.code === "not_found") { // it expired
        forgetCart();
        if (!create) throw error;
        // adding to an expired cart: a new cart takes the item
      } else {
        throw error;
      }
    }
  }
}

export const cartApi = {
  add: (sku, quantity) => change((cart) => api.addItem(cart, sku, quantity), { create: true }),
  setQuantity: (sku, quantity) => change((cart) => api.setQuantity(cart, sku, quantity)),
  remove: (sku) => change((cart) => api.removeItem(cart, sku)),
  chooseShipping: (country, method) => change((cart) => api.chooseShipping(cart, country, method)),
};
