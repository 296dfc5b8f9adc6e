// What the admin views share: labelled form fields with their error hints, a "Show more" list over the API's
// cursors, and the sentences for the admin API's problems (web/messages.js does the rest).
import { announce, h, replaceChildren, uniqueId } from "../dom.js";
import { alertBox, clearError, showError } from "../messages.js";

// The admin page's names for the fields the API names (web/messages.js knows the shop's).
const LABELS = {
  name: "Name", id: "Product id", description: "Description", category: "Category", status: "Status",
  images: "Images", variants: "Variants", delta: "Change", reason: "Reason", note: "Note", amount: "Amount",
  email: "Email", created_from: "From", created_to: "To", low_stock_threshold: "Low-stock threshold",
};
export const labels = (field) => {
  const price = /^variants\.(\d+)\.price/.exec(field ?? "");
  if (price) return `Price of variant ${Number(price[1]) + 1}`;
  return LABELS[field];
};

// A labelled control: `tag` "input", "select" or "textarea"; `options` [[value, text]] for a select.
export function field(label, name, { tag = "input", options = [], hint, ...attributes } = {}) {
  const id = uniqueId("field");
  const errorId = `${id}-error`;
  const hintId = hint ? `${id}-hint` : undefined;
  const control = h(tag, { id, name, "aria-errormessage": errorId,
    "aria-describedby": [hintId, errorId].filter(Boolean).join(" "), ...attributes },
  options.map(([value, text]) => h("option", { value }, text)));
  const element = h("div", { class: "field" }, h("label", { for: id }, label), control,
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
    h("p", { class: "field-error", id: errorId, hidden: true }));
  return { control, element };
}

// A form whose submit runs `action(form)` once at a time; problems land in its alert box and on the fields named
// in `fields` ({api field name: control}). `action` returns a sentence to announce, or nothing.
export function actionForm({ label, fields = {}, children, button, action, className = "admin-form" }) {
  const errors = alertBox();
  const submit = h("button", { type: "submit", class: "button primary" }, button);
  const form = h("form", { class: className, novalidate: true, "aria-label": label }, children, errors, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (submit.disabled) return; // a double click: the first request is on its way
    submit.disabled = true;
    clearError(errors, fields);
    try {
      const done = await action(form);
      if (done) announce(done);
    } catch (error) {
      if (error.name === "AbortError" || error.name === "SessionEnded") return;
      showError(errors, error, { fields, labels })?.focus();
    } finally {
      submit.disabled = false;
    }
  });
  return { form, errors, submit };
}

// A table with a caption; `rows` are arrays of cells (nodes or text). Wide tables scroll inside their box.
export function table(caption, headings, rows) {
  return h("div", { class: "table-box", role: "region", "aria-label": caption, tabindex: "0" },
    h("table", {}, h("caption", {}, caption),
      h("thead", {}, h("tr", {}, headings.map((heading) => h("th", { scope: "col" }, heading)))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell) => h("td", {}, cell)))))));
}

// A list that grows page by page: `load(cursor)` returns {items, next_cursor}; `render(items)` the table.
export async function pagedList(load, render, { empty }) {
  const box = h("div", { class: "paged" });
  const items = [];
  let cursor = null;
  const more = h("button", { type: "button", class: "button secondary" }, "Show more");
  const errors = alertBox();
  const draw = () => replaceChildren(box, items.length ? render(items) : h("p", {}, empty),
    errors, cursor ? more : null);
  const next = async () => {
    const page = await load(cursor);
    items.push(...page.items);
    cursor = page.next_cursor;
    draw();
  };
  more.addEventListener("click", async () => {
    more.disabled = true;
    clearError(errors);
    try {
      await next();
      announce(`${items.length} shown`);
    } catch (error) {
      if (error.name !== "SessionEnded") showError(errors, error);
    } finally {
      more.disabled = false;
    }
  });
  await next();
  return box;
}

export const statusLabel = (status) => status.replace(/_/g, " ");
