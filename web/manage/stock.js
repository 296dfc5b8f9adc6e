// Stock of one SKU: its level (on hand = reserved + available), an adjustment with a reason, and the ledger of what
// moved it. Staff may adjust too (docs/api.md): stock is their work. Each adjustment attempt has its own
// Idempotency-Key (admin-api.js), so a retry after a lost answer never moves the stock twice.
import { h, replaceChildren } from "../dom.js";
import { formatTime } from "../format.js";
import { adminApi } from "./admin-api.js";
import { actionForm, field, pagedList, table } from "./ui.js";

const REASONS = [["received", "Received"], ["correction", "Correction"], ["damaged", "Damaged"], ["lost", "Lost"],
  ["returned", "Returned"]];

function lookupForm(sku, navigate) {
  const input = field("SKU", "sku", { value: sku ?? "", required: true, autocapitalize: "characters" });
  const form = h("form", { class: "filters", "aria-label": "Find a SKU" }, input.element,
    h("button", { type: "submit", class: "button secondary" }, "Show stock"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const wanted = input.control.value.trim().toUpperCase();
    if (wanted) navigate(`#/stock/${encodeURIComponent(wanted)}`);
  });
  return form;
}

const actor = (entry) => entry.actor?.email ?? entry.actor?.username ?? (entry.order_id ? "" : "—");

export async function stockView(view, [sku], { signal, navigate }) {
  const heading = h("h1", { tabindex: "-1" }, sku ? `Stock of ${sku}` : "Stock");
  if (!sku) {
    replaceChildren(view, heading, h("p", {}, "Find a SKU, or open one from a product's page."), lookupForm(sku, navigate));
    return;
  }
  const level = h("dl", { class: "facts level" });
  const showLevel = (stock) => replaceChildren(level,
    h("dt", {}, "On hand"), h("dd", { "data-level": "on_hand" }, String(stock.on_hand)),
    h("dt", {}, "Reserved"), h("dd", { "data-level": "reserved" }, String(stock.reserved)),
    h("dt", {}, "Available"), h("dd", { "data-level": "available" }, String(stock.available)),
    h("dt", {}, "Low-stock threshold"), h("dd", {}, stock.low_stock_threshold ?? "none"));
  const ledgerBox = h("div");
  const loadLedger = async () => {
    let first = true;
    const list = await pagedList(async (cursor) => {
      const stock = (await adminApi.inventory(sku, cursor, signal)).data;
      if (first) showLevel(stock);
      first = false;
      return stock.ledger;
    }, (entries) => table("Ledger, newest first", ["When", "Change", "Reason", "Order", "By", "Note"],
      entries.map((e) => [formatTime(e.at), e.delta > 0 ? `+${e.delta}` : String(e.delta), e.reason,
        e.order_id ? h("a", { href: `#/orders/${encodeURIComponent(e.order_id)}` }, e.order_id.slice(0, 8)) : "",
        actor(e), e.note ?? ""])), { empty: "Nothing has moved this SKU's stock yet." });
    replaceChildren(ledgerBox, list);
  };
  await loadLedger();

  const delta = field("Change (units)", "delta", { type: "number", step: 1, required: true,
    hint: "Positive to add units, negative to take them away." });
  const reason = field("Reason", "reason", { tag: "select", options: REASONS });
  const note = field("Note (optional)", "note", { maxlength: 500 });
  const { form } = actionForm({
    label: "Adjust stock", button: "Adjust stock",
    fields: { delta: delta.control, reason: reason.control, note: note.control },
    children: [h("h2", {}, "Adjust"), delta.element, reason.element, note.element],
    action: async () => {
      const body = { delta: Number(delta.control.value), reason: reason.control.value };
      if (note.control.value.trim()) body.note = note.control.value.trim();
      const stock = (await adminApi.adjust(sku, body)).data;
      showLevel(stock);
      delta.control.value = "";
      note.control.value = "";
      await loadLedger(); // the ledger is an index: the new line may take a moment, the level is already right
      return `Stock adjusted: ${stock.available} available.`;
    },
  });
  replaceChildren(view, h("p", { class: "breadcrumb" }, h("a", { href: "#/stock" }, "Stock")), heading,
    lookupForm(sku, navigate), h("h2", {}, "Level"), level, form, h("h2", {}, "Ledger"), ledgerBox);
}
