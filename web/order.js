// An order's page: it follows the order with polling and says what is happening in a live region (announced
// once per change). Polling asks every config.pollIntervalMs while the order moves, less often (up to
// config.maxPollIntervalMs) while it stays put, not at all while the tab is hidden (and at once when it is
// shown again), and gives up after config.pollForMs without a change (a parcel takes days) with a button to
// look again. A 4xx other than 408/429 ends it too: asking again would get the same answer.
// On the local stack (make dev) the page also lists the emails the shopper has been sent (see localEmails).
import { api, devEmailUrl } from "./api.js";
import { totalsList } from "./cart-view.js";
import { notFound } from "./catalog.js";
import { config } from "./config.js";
import { h, replaceChildren, sleep, whileHidden } from "./dom.js";
import { countryName, formatMoney, formatTime, formatWindow } from "./format.js";

const STEPS = [
  ["pending", "Placed"], ["awaiting_payment", "Payment"], ["paid", "Paid"],
  ["fulfilling", "Packing"], ["shipped", "Shipped"], ["delivered", "Delivered"],
];
const LABELS = {
  pending: "Order placed", awaiting_payment: "Awaiting payment", paid: "Paid", fulfilling: "Being packed",
  shipped: "Shipped", delivered: "Delivered", rejected: "Order not accepted", payment_failed: "Payment declined",
  expired: "Order expired", cancelled: "Order cancelled",
};
const ENDED = new Set(["delivered", "rejected", "payment_failed", "expired", "cancelled"]);
const FAILED = new Set(["rejected", "payment_failed", "expired", "cancelled"]);

export async function orderView(view, [orderId], { signal }) {
  let order;
  try {
    order = (await api.order(orderId, signal)).data;
  } catch (error) {
    if (error.status === 404) {
      notFound(view, "Order not found", "There is no such order. Check the link you followed.");
      return;
    }
    throw error;
  }
  // The live region stays in place while the rest is redrawn, so each new status is announced.
  const status = h("div", { class: "order-status", role: "status", "aria-live": "polite", "aria-atomic": "true" });
  const details = h("div", { class: "order-details" });
  const connection = h("p", { class: "hint", role: "status" });
  const again = h("button", { type: "button", class: "button secondary", hidden: true }, "Check for updates");
  const emails = localEmails(orderId, signal);
  replaceChildren(view, h("h1", { tabindex: "-1" }, "Your order"), status, h("div", { class: "polling" }, connection, again),
    details, emails.section);

  let shown = "";
  const draw = () => { // true when something the shopper sees has changed
    const fingerprint = JSON.stringify([order.status, order.fulfilment, order.payment?.redirect_url,
      order.payment?.status, order.payment?.attempts, order.refunded]);
    if (fingerprint === shown) return false;
    shown = fingerprint;
    status.dataset.status = order.status;
    status.className = `order-status ${FAILED.has(order.status) ? "bad" : order.status === "delivered" ? "good" : ""}`;
    replaceChildren(status, h("h2", {}, LABELS[order.status] ?? order.status), statusText(order));
    replaceChildren(details, ...orderDetails(order));
    emails.watch(); // each change of status may send the shopper an email
    return true;
  };
  draw();

  const follow = async () => { // not awaited: the page is usable while the order moves
    let delay = config.pollIntervalMs;
    let changedAt = Date.now();
    const stop = (message) => {
      connection.textContent = message;
      again.hidden = false;
    };
    while (!ENDED.has(order.status) && !signal.aborted) {
      if (Date.now() - changedAt > config.pollForMs) return stop("No news for a while, so this page stopped checking.");
      await sleep(delay, signal);
      if (await whileHidden(signal)) { // the shopper is back: ask now, and give the order time again
        changedAt = Date.now();
        delay = config.pollIntervalMs;
      }
      if (signal.aborted) return;
      try {
        order = (await api.order(orderId, signal)).data;
        connection.textContent = "";
        if (draw()) {
          changedAt = Date.now();
          delay = config.pollIntervalMs;
        } else {
          delay = Math.min(delay * 1.5, config.maxPollIntervalMs);
        }
      } catch (error) {
        if (error.name === "AbortError") return;
        if (error.status >= 400 && error.status < 500 && error.status !== 408 && error.status !== 429) {
          return stop(`${error.message} This page stopped checking.`);
        }
        // The API is unreachable or busy: ask less often, and never sooner than it asked (Retry-After).
        delay = Math.max(Math.min(delay * 2, config.maxPollIntervalMs), error.retryAfter(0) * 1000);
        connection.textContent = "Cannot reach the shop right now; still trying…";
      }
    }
  };
  again.addEventListener("click", () => {
    again.hidden = true;
    connection.textContent = "";
    follow();
  });
  follow();
}

// The emails this order has been sent, with links to read them: only where GET /dev/emails answers, which is the
// local stack's SES (a deployed API has no such route, so there the first request fails and the page never
// asks again). A mail leaves a moment after the status changes, so the list is asked for every
// MAIL_CHECK_MS for MAIL_WATCH_MS after each change.
const MAIL_CHECK_MS = 1000;
const MAIL_WATCH_MS = 15_000;

function localEmails(orderId, signal) {
  const section = h("section", { class: "summary emails", "aria-labelledby": "order-emails", hidden: true });
  let available = true;
  let watchUntil = 0;
  let watching = false;
  const refresh = async () => {
    try {
      const sent = (await api.devEmails(signal)).data.items.filter((email) => email.order_id === orderId);
      replaceChildren(section, h("h2", { id: "order-emails" }, "Emails sent (local stack)"),
        sent.length ? h("ul", { class: "email-list" }, sent.map((email) => h("li", {},
          h("a", { href: devEmailUrl(email.id), target: "_blank", rel: "noopener noreferrer" }, email.subject,
            h("span", { class: "visually-hidden" }, " (opens in a new tab)")),
          " ", h("time", { class: "hint", datetime: email.at }, formatTime(email.at)))))
          : h("p", { class: "hint" }, "None yet."));
      section.hidden = false;
    } catch (error) {
      if (error.name !== "AbortError") available = false;
    }
  };
  const watch = async () => {
    watchUntil = Date.now() + MAIL_WATCH_MS;
    if (watching) return;
    watching = true;
    while (available && !signal.aborted && Date.now() < watchUntil) {
      if (await whileHidden(signal)) watchUntil = Date.now() + MAIL_WATCH_MS; // back from another tab: look again
      await refresh();
      await sleep(MAIL_CHECK_MS, signal);
    }
    watching = false;
  };
  return { section, watch };
}

function statusText(order) {
  const names = Object.fromEntries(order.lines.map((line) => [line.sku, line.title]));
  const total = formatMoney(order.totals.total);
  switch (order.status) {
    case "pending":
      return h("p", {}, "We are reserving your items…");
    case "awaiting_payment":
      return payment(order, total);
    case "paid":
      return h("p", {}, `We have received your payment of ${total}. Thank you! Your parcel is being prepared.`);
    case "fulfilling":
      return [h("p", {}, "Your parcel is being packed."), tracking(order)];
    case "shipped":
      return [h("p", {}, "Your parcel is on its way."), tracking(order)];
    case "delivered":
      return [h("p", {}, "Your parcel has been delivered. Enjoy!"), tracking(order)];
    case "rejected": {
      const lines = order.reason?.lines ?? [];
      const why = order.reason?.code === "insufficient_stock"
        ? "Some items sold out before we could reserve them:" : (order.reason?.detail ?? "");
      return h("div", {},
        h("p", {}, `Sorry, we could not accept this order. ${why}`),
        lines.length ? h("ul", {}, lines.map((line) => h("li", {},
          `${names[line.sku] ?? line.sku}: ${line.requested} ordered, ${line.available} available`))) : null,
        h("p", {}, "You have not been charged. ", h("a", { href: "#/" }, "Continue shopping")));
    }
    case "payment_failed":
      return h("p", {}, "Your payment was declined too many times, so this order has been cancelled and the items "
        + "released. You have not been charged. ", h("a", { href: "#/" }, "Continue shopping"));
    case "expired":
      return h("p", {}, "We did not receive your payment in time, so this order has expired and the items were "
        + "released. You have not been charged. ", h("a", { href: "#/" }, "Continue shopping"));
    case "cancelled":
      return h("p", {}, "This order has been cancelled. ", refundText(order),
        h("a", { href: "#/" }, "Continue shopping"));
    default:
      return h("p", {}, `Status: ${order.status}`);
  }
}

function payment(order, total) {
  const redirect = safeUrl(order.payment?.redirect_url);
  if (!redirect && order.payment?.client_secret) {
    // A provider without a hosted page (Stripe) is paid with its own script and the client secret; this demo
    // page has none (docs/demo-shop.md).
    return h("p", {}, `Your items are reserved, but this shop cannot take payments with ${order.payment.provider}. `
      + "Unpaid orders expire and their items are released; you will not be charged.");
  }
  if (!redirect) return h("p", {}, "Your items are reserved. Waiting for the payment to be set up…");
  // The provider sends the shopper back here afterwards; this page then follows the order.
  redirect.searchParams.set("return_url", window.location.href);
  if (order.payment.status === "declined") {
    // A decline is not the end: the same payment may be tried again (with another card) until the shop gives up.
    const why = order.payment.last_error?.message ?? "Your payment was declined.";
    return h("div", { class: "declined" },
      h("p", { role: "alert" }, `${why} Your items are still reserved: you can try again.`),
      h("a", { class: "button primary", href: redirect.href }, `Try again · ${total}`));
  }
  return h("div", {},
    h("p", {}, `Your items are reserved. Pay ${total} to complete your order.`),
    h("a", { class: "button primary", href: redirect.href }, `Pay ${total}`));
}

function refundText(order) {
  const refunded = order.refunded?.amount ? formatMoney(order.refunded) : null;
  return refunded ? `${refunded} has been refunded to you. ` : "";
}

function tracking(order) {
  const f = order.fulfilment;
  if (!f?.tracking_number) return null;
  const link = safeUrl(f.tracking_url);
  return h("p", { class: "tracking" },
    f.carrier ? `Carrier: ${f.carrier}. ` : "", "Tracking number: ", h("strong", { class: "tracking-number" }, f.tracking_number),
    link ? [" · ", h("a", { href: link.href, target: "_blank", rel: "noopener noreferrer" }, "Track your parcel",
      h("span", { class: "visually-hidden" }, " (opens in a new tab)"))] : null);
}

// Only http(s) links from the API are followed (never javascript: or data:).
function safeUrl(value) {
  try {
    const url = new URL(value);
    return url.protocol === "https:" || url.protocol === "http:" ? url : null;
  } catch {
    return null;
  }
}

function orderDetails(order) {
  const reached = STEPS.findIndex(([status]) => status === order.status);
  const address = order.shipping_address;
  return [
    FAILED.has(order.status) ? null : h("ol", { class: "progress", "aria-label": "Order progress" },
      STEPS.map(([, label], index) => h("li", {
        class: index < reached ? "done" : index === reached ? "current" : "",
        "aria-current": index === reached ? "step" : null,
      }, label, index < reached ? h("span", { class: "visually-hidden" }, " (done)") : null))),
    h("section", { class: "summary", "aria-labelledby": "order-items" },
      h("h2", { id: "order-items" }, "Items"),
      h("ul", { class: "summary-lines" }, order.lines.map((line) => h("li", {},
        h("span", {}, `${line.quantity} × ${line.title}`), h("span", {}, formatMoney(line.line_total))))),
      totalsList(order.totals)),
    h("section", { class: "summary", "aria-labelledby": "order-delivery" },
      h("h2", { id: "order-delivery" }, "Delivery"),
      h("address", {}, [address.name, address.line1, address.line2, `${address.postal_code} ${address.city}`,
        countryName(address.country)].filter(Boolean).flatMap((part) => [part, h("br")])),
      h("p", {}, `Estimated delivery: ${formatWindow(order.shipping.estimated_delivery)}`),
      h("p", {}, `Confirmation to ${order.email}`)),
    h("section", { class: "summary", "aria-labelledby": "order-history" },
      h("h2", { id: "order-history" }, "History"),
      h("ol", { class: "history" }, order.history.map((entry) => h("li", {},
        h("span", {}, LABELS[entry.status] ?? entry.status), " ", h("time", { datetime: entry.at }, formatTime(entry.at))))),
      h("p", { class: "hint" }, `Order number ${order.id}`)),
  ];
}
