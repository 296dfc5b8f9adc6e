// Money and dates for people. Money is integer minor units plus an ISO 4217 code: never a float here either.
import { shop } from "./shop.js";

const moneyFormats = new Map();

function moneyFormat(currency) {
  if (!moneyFormats.has(currency)) {
    moneyFormats.set(currency, new Intl.NumberFormat(shop.locale, { style: "currency", currency }));
  }
  return moneyFormats.get(currency);
}

// {amount: 4990, currency: "EUR"} -> "€49.90"; JPY has exponent 0, KWD 3 (Intl knows each currency's digits).
export function formatMoney(money) {
  // Intl formats decimal strings exactly, so 4990 becomes "49.90" by string surgery, not by dividing floats.
  return moneyFormat(money.currency).format(majorUnits(money));
}

// What a person types for an amount of `currency` ("49.90", "49,9", "1200" yen) in minor units (4990), or null when
// it is not one (a negative amount, more decimals than the currency has, not a number). No floats: string surgery.
export function minorUnits(text, currency) {
  const exponent = moneyFormat(currency).resolvedOptions().maximumFractionDigits;
  const found = String(text).trim().match(/^(\d+)(?:[.,](\d*))?$/);
  if (!found || (found[2] ?? "").length > exponent) return null;
  const amount = Number(found[1] + (found[2] ?? "").padEnd(exponent, "0"));
  return Number.isSafeInteger(amount) ? amount : null;
}

// {amount: 4990, currency: "EUR"} -> "49.90": the amount as a form field shows it (no symbol, no grouping).
export function majorUnits(money) {
  const exponent = moneyFormat(money.currency).resolvedOptions().maximumFractionDigits;
  const digits = String(Math.abs(money.amount)).padStart(exponent + 1, "0");
  const major = digits.slice(0, digits.length - exponent);
  return `${money.amount < 0 ? "-" : ""}${exponent ? `${major}.${digits.slice(-exponent)}` : major}`;
}

const dayFormat = new Intl.DateTimeFormat(shop.locale, { weekday: "short", day: "numeric", month: "short", timeZone: "UTC" });
const timeFormat = new Intl.DateTimeFormat(shop.locale, { dateStyle: "medium", timeStyle: "medium" });

// "2026-11-27" (a calendar date, no time zone) -> "Fri, 27 Nov"
export function formatDay(isoDate) {
  return dayFormat.format(new Date(`${isoDate}T00:00:00Z`));
}

// {earliest, latest} -> "Fri, 27 Nov – Tue, 1 Dec", or one day when both are the same.
export function formatWindow(window) {
  if (window.earliest === window.latest) return formatDay(window.earliest);
  return dayFormat.formatRange(new Date(`${window.earliest}T00:00:00Z`), new Date(`${window.latest}T00:00:00Z`));
}

export function formatTime(isoDateTime) {
  return timeFormat.format(new Date(isoDateTime));
}

const countryNames = new Intl.DisplayNames(shop.locale ? [shop.locale] : undefined, { type: "region" });

// In the shop's language (Intl knows every region's name); the shop's own name for it when Intl does not.
export function countryName(code) {
  return countryNames.of(code) || shop.countries.find((country) => country.code === code)?.name || code;
}
