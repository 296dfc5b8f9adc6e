// Small DOM helpers: elements are built with h() (text is always text, never parsed as HTML).

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

export function append(element, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

export function replaceChildren(element, ...children) {
  element.replaceChildren();
  return append(element, children);
}

// A polite announcement for screen readers, for changes that happen away from the focus.
export function announce(message) {
  const announcer = document.querySelector("[data-announcer]");
  announcer.textContent = "";
  // A fresh text node in a new task, so that repeating the same words is announced again.
  setTimeout(() => { announcer.textContent = message; }, 50);
}

let uniqueIds = 0;
export function uniqueId(prefix) {
  uniqueIds += 1;
  return `${prefix}-${uniqueIds}`;
}

export const sleep = (ms, signal) => new Promise((resolve) => {
  const timer = setTimeout(resolve, ms);
  signal?.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
});

// Resolves at once on a visible page (false), else when the page is shown again or the signal aborts (true):
// a tab in the background does not poll.
export const whileHidden = (signal) => new Promise((resolve) => {
  const waited = document.hidden;
  const check = () => {
    if (document.hidden && !signal?.aborted) return;
    document.removeEventListener("visibilitychange", check);
    resolve(waited);
  };
  document.addEventListener("visibilitychange", check);
  signal?.addEventListener("abort", check, { once: true });
  check();
});
