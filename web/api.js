// The Storefront API over fetch. Errors become ProblemError, built from the RFC 9457 problem+json body.
import { config } from "./config.js";

const API_BASE = config.apiBase.replace(/\/+$/, ""); // paths start with "/"

export class ProblemError extends Error {
  constructor(status, problem, headers = null) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.name = "ProblemError";
    this.status = status;
    this.code = problem.code || (status === 0 ? "network_error" : `http_${status}`);
    this.title = problem.title || "";
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
    this.problem = problem;
    this.headers = headers;
  }

  // Seconds the server asked us to wait (Retry-After), or the fallback.
  retryAfter(fallback = 1) {
    const seconds = Number(this.headers?.get("Retry-After"));
    return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 10) : fallback;
  }
}

// One API call; returns {data, status, headers} or throws ProblemError (status 0: the API was not reached).
export async function request(method, path, { body, headers = {}, signal } = {}) {
  const init = {
    method,
    signal,
    headers: { Accept: "application/json, application/problem+json", ...headers },
    // GETs revalidate with the ETag the API sends (304 when unchanged), so stock shown is never stale.
    cache: method === "GET" ? "no-cache" : "no-store",
  };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(API_BASE + path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ProblemError(0, {
      title: "Network error",
      detail: "The shop could not be reached. Check your connection and try again.",
    });
  }
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await response.json().catch(() => null) : null;
  if (!response.ok) {
    const problem = data && typeof data === "object" ? data : {};
    throw new ProblemError(response.status, {
      title: problem.title || response.statusText || "Error",
      detail: problem.detail || problem.message || `The shop answered with HTTP ${response.status}.`,
      ...problem,
    }, response.headers);
  }
  return { data, status: response.status, headers: response.headers };
}

const enc = encodeURIComponent;

export const api = {
  categories: (signal) => request("GET", "/categories", { signal }),
  products: ({ category, cursor, limit }, signal) => {
    const query = new URLSearchParams({ limit: String(limit) });
    if (category) query.set("category", category);
    if (cursor) query.set("cursor", cursor);
    return request("GET", `/products?${query}`, { signal });
  },
  product: (id, signal) => request("GET", `/products/${enc(id)}`, { signal }),
  shippingMethods: (country, signal) => request("GET", `/shipping-methods?country=${enc(country)}`, { signal }),
  createCart: () => request("POST", "/carts", { body: {} }),
  cart: (id) => request("GET", `/carts/${enc(id)}`),
  // Cart mutations carry the version they were based on; a stale one is a 412 version_conflict.
  addItem: (cart, sku, quantity) =>
    request("POST", `/carts/${enc(cart.id)}/items`, { body: { sku, quantity }, headers: ifMatch(cart) }),
  setQuantity: (cart, sku, quantity) =>
    request("PUT", `/carts/${enc(cart.id)}/items/${enc(sku)}`, { body: { quantity }, headers: ifMatch(cart) }),
  removeItem: (cart, sku) =>
    request("DELETE", `/carts/${enc(cart.id)}/items/${enc(sku)}`, { headers: ifMatch(cart) }),
  chooseShipping: (cart, country, method) =>
    request("PUT", `/carts/${enc(cart.id)}/shipping`, { body: { country, method }, headers: ifMatch(cart) }),
  checkout: (body, idempotencyKey) =>
    request("POST", "/checkout", { body, headers: { "Idempotency-Key": idempotencyKey } }),
  order: (id, signal) => request("GET", `/orders/${enc(id)}`, { signal }),
  // Local stack only (make dev): the customer emails its SES has sent. A deployed API has no such route.
  devEmails: (signal) => request("GET", "/dev/emails", { signal }),
};

// Where the local stack shows one sent email, as HTML.
export const devEmailUrl = (id) => `${API_BASE}/dev/emails/${enc(id)}`;

function ifMatch(cart) {
  return { "If-Match": `"${cart.version}"` };
}
