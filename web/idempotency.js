// One Idempotency-Key per attempt: made once, kept in sessionStorage under the attempt's name, and sent again
// when the same request is retried (a network error, a reload, a second click), so the API answers with what it
// already did instead of doing it again. A changed body is a new attempt with a new key; a finished attempt is
// forgotten, so the next one gets a key of its own.
const hex = (bytes) => Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");

function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // crypto.randomUUID needs a secure context (https or localhost); 128 random bits do as well.
  return hex(crypto.getRandomValues(new Uint8Array(16)));
}

// An attempt is recognised by a SHA-256 of its body, so what it says (a shopper's address) is not stored.
// (crypto.subtle, too, needs a secure context; on plain http the body itself is compared.)
async function fingerprint(body) {
  const text = JSON.stringify(body);
  return crypto.subtle ? hex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))) : text;
}

// The key of the attempt `name` that sends `body`.
export async function keyFor(name, body) {
  const attempt = await fingerprint(body);
  const previous = JSON.parse(sessionStorage.getItem(name) ?? "null");
  const key = previous?.attempt === attempt ? previous.key : newKey();
  sessionStorage.setItem(name, JSON.stringify({ key, attempt }));
  return key;
}

// The attempt `name` got its answer: its next request is a new attempt.
export function attemptDone(name) {
  sessionStorage.removeItem(name);
}
