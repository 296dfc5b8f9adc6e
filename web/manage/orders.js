// Orders: a search (status, email, creation dates) and one order with its lines, payment, refunds, history and
// the operators' changes. Cancel and refund are for the admin group; staff see why the buttons are not there.
import { h, replaceChildren } from "../dom.js";
import { formatMoney, formatTime, majorUnits, minorUnits } from "../format.js";
import { ProblemError } from "../api.js";
import { adminApi } from "./admin-api.js";
import { isAdmin } from "./session.js";
import { actionForm, field, pagedList, statusLabel, table } from "./ui.js";

const STATUSES = ["pending", "awaiting_payment", "paid", "fulfilling", "shipped", "delivered", "rejected",
  "payment_failed", "expired", "cancelled"];
const FILTERS = ["status", "email", "created_from", "created_to"];
const orderLink = (order) => h("a", { href: `#/orders/${encodeURIComponent(order.id)}` }, order.id);

export async function ordersView(view, _params, { signal, navigate, query }) {
  const filters = Object.fromEntries(FILTERS.map((name) => [name, query.get(name) ?? ""]));
  const f = {
    status: field("Status", "status", { tag: "select",
      options: [["", "Any status"], ...STATUSES.map((s) => [s, statusLabel(s)])] }),
    email: field("Email", "email", { type: "email" }),
    created_from: field("From", "created_from", { type: "date" }),
    created_to: field("To", "created_to", { type: "date" }),
  };
  for (const name of FILTERS) f[name].control.value = filters[name];
  const form = h("form", { class: "filters", "aria-label": "Search orders" }, Object.values(f).map((x) => x.element),
    h("button", { type: "submit", class: "button secondary" }, "Search"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const search = new URLSearchParams();
    for (const name of FILTERS) if (f[name].control.value.trim()) search.set(name, f[name].control.value.trim());
    navigate(`#/orders${search.size ? `?${search}` : ""}`);
  });
  const searched = Object.fromEntries(Object.entries(filters).filter(([, value]) => value));
  const list = await pagedList((cursor) => adminApi.orders(searched, cursor, signal).then((r) => r.data),
    (orders) => table("Orders, newest first", ["Order", "Placed", "Email", "Status", "Total"], orders.map((o) => [
      orderLink(o), formatTime(o.created_at), o.email,
      h("span", { class: `badge status-${o.status}` }, statusLabel(o.status)), formatMoney(o.totals.total),
    ])), { empty: "No orders match." });
  replaceChildren(view, h("h1", { tabindex: "-1" }, "Orders"), form, list);
}

function moneyActions(order, draw) {
  if (!isAdmin()) {
    return [h("p", { class: "notice" }, "Cancelling and refunding take the admin group.")];
  }
  const cancelReason = field("Reason", "reason", { required: true, maxlength: 500 });
  const cancel = actionForm({
    label: "Cancel the order", button: "Cancel order", fields: { reason: cancelReason.control },
    children: [h("h2", {}, "Cancel"), h("p", { class: "hint" }, "A paid order's payment is refunded and its "
      + "units go back to stock."), cancelReason.element],
    action: async () => {
      await adminApi.cancel(order.id, cancelReason.control.value.trim());
      await draw("Order cancelled.");
    },
  });
  cancel.submit.classList.replace("primary", "danger");
  const currency = order.totals.total.currency;
  const left = order.totals.total.amount - (order.refunded?.amount ?? 0);
  const amount = field(`Amount (${currency})`, "amount", { inputmode: "decimal",
    hint: `Empty: all that is left, ${formatMoney({ amount: left, currency })}.` });
  const restock = h("input", { type: "checkbox", id: "refund-restock", name: "restock" });
  const refundReason = field("Reason", "reason", { required: true, maxlength: 500 });
  const refund = actionForm({
    label: "Refund", button: "Refund", fields: { amount: amount.control, reason: refundReason.control },
    children: [h("h2", {}, "Refund"), amount.element, refundReason.element,
      h("div", { class: "choice" }, restock, h("label", { for: "refund-restock" }, "Put every unit back in stock"))],
    action: async () => {
      const body = { reason: refundReason.control.value.trim(), restock: restock.checked };
      if (amount.control.value.trim()) {
        const minor = minorUnits(amount.control.value, currency);
        if (minor === null) {
          throw new ProblemError(422, { title: "Please check the following.", code: "validation_error",
            errors: [{ field: "amount", code: "invalid_amount",
              message: `must be an amount like ${majorUnits({ amount: left, currency })}` }] });
        }
        body.amount = { amount: minor, currency };
      }
      if (restock.checked) body.lines = order.lines.map(({ sku, quantity }) => ({ sku, quantity }));
      await adminApi.refund(order.id, body);
      await draw("Refund made.");
    },
  });
  return [cancel.form, refund.form];
}

export async function orderView(view, [id], { signal }) {
  const draw = async (notice = "") => {
    const order = (await adminApi.order(id, signal)).data;
    replaceChildren(view, ...orderPage(order, notice, draw));
    if (notice) view.querySelector("h1").focus();
  };
  await draw();
}

function orderPage(order, notice, draw) {
  const payment = order.payment;
  return [
    h("p", { class: "breadcrumb" }, h("a", { href: "#/orders" }, "Orders")),
    h("h1", { tabindex: "-1" }, `Order ${order.id}`),
    h("p", { class: "notice", role: "status" }, notice),
    h("dl", { class: "facts" },
      h("dt", {}, "Status"), h("dd", { "data-order-status": order.status },
        h("span", { class: `badge status-${order.status}` }, statusLabel(order.status))),
      h("dt", {}, "Email"), h("dd", {}, order.email),
      h("dt", {}, "Placed"), h("dd", {}, formatTime(order.created_at)),
      h("dt", {}, "Total"), h("dd", {}, formatMoney(order.totals.total)),
      h("dt", {}, "Payment"), h("dd", {}, payment ? `${payment.provider}, ${statusLabel(payment.status)} (${payment.payment_id})`
        : "none"),
      h("dt", {}, "Refunded"), h("dd", {}, order.refunded ? formatMoney(order.refunded) : "nothing"),
      h("dt", {}, "Shipment"), h("dd", {}, order.fulfilment
        ? `${statusLabel(order.fulfilment.status)} ${order.fulfilment.tracking_number ?? ""}` : "none"),
      order.reason ? [h("dt", {}, "Why"), h("dd", {}, order.reason.detail)] : null),
    table("Lines", ["SKU", "Item", "Quantity", "Total"], order.lines.map((line) => [
      h("a", { href: `#/stock/${encodeURIComponent(line.sku)}` }, line.sku), line.title, String(line.quantity),
      formatMoney(line.line_total)])),
    order.refunds.length ? table("Refunds", ["Made", "Amount", "Status", "Reason", "Restocked"],
      order.refunds.map((r) => [formatTime(r.created_at), formatMoney(r.amount), r.status, r.reason,
        r.restock ? "yes" : "no"])) : h("p", {}, "No refunds."),
    table("History", ["Status", "When"], order.history.map((e) => [statusLabel(e.status), formatTime(e.at)])),
    order.audit.length ? table("Operators' changes", ["When", "Who", "What"], order.audit.map((e) => [
      formatTime(e.at), e.actor.email ?? e.actor.username, e.action])) : h("p", {}, "No operator has changed it."),
    ...moneyActions(order, draw),
  ];
}
