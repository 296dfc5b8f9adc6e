// The shop's own settings, from the API (GET /shop, docs/api.md): its name, locale, currency, support contact and
// the countries it ships to. Read once, when the page loads and before any view draws, so the page never repeats
// what the backend's shop.json already says. If the API cannot be reached, `shopError` says why and app.js shows it.
import { api } from "./api.js";

export let shopError = null;

export const shop = await api.shop().then(({ data }) => data, (error) => {
  shopError = error;
  return { name: "Shop", locale: undefined, currency: "EUR", countries: [], default_country: undefined, support: {} };
});
