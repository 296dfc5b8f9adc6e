// The admin API's calls that the views share, with the session's token (session.js).
import { attemptDone, keyFor } from "../idempotency.js";
import { call } from "./session.js";
import { adminConfig } from "./config.js";

const enc = encodeURIComponent;
const query = (params) => {
  const search = new URLSearchParams({ limit: String(adminConfig.pageSize) });
  for (const [name, value] of Object.entries(params)) if (value) search.set(name, value);
  return search;
};

export const adminApi = {
  categories: (signal) => call("GET", "/categories", { signal }), // the public list names every category
  products: (status, cursor, signal) => call("GET", `/admin/products?${query({ status, cursor })}`, { signal }),
  product: (id, signal) => call("GET", `/admin/products/${enc(id)}`, { signal }),
  createProduct: (body) => call("POST", "/admin/products", { body }),
  // A whole product, as PUT takes it back: only the fields it accepts, the version it was based on in If-Match.
  replaceProduct: (product, changes) => call("PUT", `/admin/products/${enc(product.id)}`, {
    headers: { "If-Match": `"${product.version}"` },
    body: {
      name: product.name, description: product.description, category: product.category, status: product.status,
      images: product.images,
      variants: product.variants.map(({ sku, title, price }) => ({ sku, title, price })),
      ...changes,
    },
  }),
  archiveProduct: (product) => call("DELETE", `/admin/products/${enc(product.id)}`,
    { headers: { "If-Match": `"${product.version}"` } }),
  imageUpload: (id, file) => call("POST", `/admin/products/${enc(id)}/images`,
    { body: { content_type: file.type, size: file.size } }),
  inventory: (sku, cursor, signal) => call("GET", `/admin/inventory/${enc(sku)}?${query({ cursor })}`, { signal }),
  orders: (filters, cursor, signal) => call("GET", `/admin/orders?${query({ ...filters, cursor })}`, { signal }),
  order: (id, signal) => call("GET", `/admin/orders/${enc(id)}`, { signal }),
  cancel: (id, reason) => call("POST", `/admin/orders/${enc(id)}/cancel`, { body: { reason } }),
  refund: (id, body) => idempotent(`storefront.admin.refund.${id}`, body,
    (key) => call("POST", `/admin/orders/${enc(id)}/refunds`, { body, headers: { "Idempotency-Key": key } })),
  adjust: (sku, body) => idempotent(`storefront.admin.adjustment.${sku}`, body,
    (key) => call("POST", `/admin/inventory/${enc(sku)}/adjustments`, { body, headers: { "Idempotency-Key": key } })),
};

// One Idempotency-Key per attempt (web/idempotency.js): a retry of the same body after a lost answer (the network,
// a 5xx, a request still running) sends the same key, so the stock moves or the money goes back once; an answer
// that settles it (made, or refused: a refusal gives the key back) ends the attempt.
async function idempotent(attempt, body, send) {
  const key = await keyFor(attempt, body);
  try {
    const answer = await send(key);
    attemptDone(attempt);
    return answer;
  } catch (error) {
    const settled = error.status >= 400 && error.status < 500 && error.code !== "request_in_progress";
    if (settled) attemptDone(attempt);
    throw error;
  }
}
