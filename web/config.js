// Settings of the demo storefront: the only file to edit when deploying it (docs/demo-shop.md).
// What the shop is (name, locale, currency, countries) comes from the API's GET /shop (web/shop.js).
export const config = Object.freeze({
  // The Storefront API's base URL. "" means the origin that serves this page, which is
  // how `make dev` serves it (http://127.0.0.1:3000/). For a deployed stack use its ApiUrl output, e.g.
  // "https://abc123.execute-api.eu-central-1.amazonaws.com", and add this site's origin to the
  // template's AllowedOrigins parameter so that the browser may call the API.
  apiBase: "",
  pageSize: 12,
  // An order's page asks for its status this often while the order moves, less often (up to the maximum)
  // while it does not, and stops after pollForMs without a change (web/order.js).
  pollIntervalMs: 1000,
  maxPollIntervalMs: 30_000,
  pollForMs: 30 * 60_000,
});
