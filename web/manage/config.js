// Settings of the admin page: with web/config.js (apiBase, shared with the shop), the only file to edit when
// deploying it (docs/admin.md). The API's address comes from web/config.js: the page and the shop use one API.
export const adminConfig = Object.freeze({
  // The operators' Cognito user pool app client: { region: "eu-central-1", clientId: "<AdminUserPoolClientId>" }
  // from the stack's outputs. null: ask the local stack (GET <apiBase>/dev/auth/config), as `make dev` serves it.
  cognito: null,
  // Lists (products, orders, the stock ledger) show this many items a page.
  pageSize: 20,
});
