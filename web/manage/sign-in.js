// The sign-in form: email and password, then, when Cognito asks, a new password (an account an admin created) or
// the code of an authenticator app. session.js talks to Cognito; this module only asks and shows.
import { h, replaceChildren } from "../dom.js";
import { describe } from "../messages.js";
import { answerChallenge, signIn, SignInError } from "./session.js";
import { field } from "./ui.js";

// Cognito's refusals, as sentences; anything else keeps Cognito's own message.
const SIGN_IN_PROBLEMS = {
  NotAuthorizedException: "The email or password is not right.",
  UserNotFoundException: "The email or password is not right.", // the same words: which one is wrong stays unsaid
  PasswordResetRequiredException: "Your password must be reset: ask an admin.",
  InvalidPasswordException: "The new password is too weak: at least 12 characters with upper and lower case, a digit "
    + "and a symbol.",
  CodeMismatchException: "The code is not right. Try the newest one.",
  TooManyRequestsException: "Too many attempts. Wait a minute and try again.",
};

function showProblem(box, error) {
  if (error instanceof SignInError) {
    replaceChildren(box, h("p", { class: "alert-title" }, SIGN_IN_PROBLEMS[error.code] ?? error.message));
    return;
  }
  const { title, items } = describe(error);
  replaceChildren(box, h("p", { class: "alert-title" }, title),
    items.length ? h("ul", {}, items.map((item) => h("li", {}, item))) : null);
}

// One step of the sign-in: `fields` to fill, `send(values)` answers with signIn's result.
function stepForm(view, { heading, intro, fields, button, notice, send, next }) {
  const alert = h("div", { class: "alert", role: "alert" });
  const submit = h("button", { type: "submit", class: "button primary" }, button);
  const form = h("form", { class: "sign-in", novalidate: true },
    fields.map((f) => f.element), alert, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (submit.disabled) return;
    submit.disabled = true;
    alert.replaceChildren();
    try {
      await next(await send(fields.map((f) => f.control.value)));
    } catch (error) {
      showProblem(alert, error);
      submit.disabled = false;
      fields.at(-1).control.select();
    }
  });
  replaceChildren(view, h("h1", { tabindex: "-1" }, heading),
    notice ? h("p", { class: "notice", role: "status" }, notice) : null,
    intro ? h("p", {}, intro) : null, form);
  return fields[0].control;
}

export function signInView(view, { notice, signedIn }) {
  const afterAnswer = async (step) => {
    if (step.signedIn) return signedIn();
    const challenge = step.challenge === "NEW_PASSWORD_REQUIRED"
      ? {
        heading: "Choose your password", button: "Save password and sign in",
        intro: "This is your first sign-in: choose a password of your own.",
        fields: [field("New password", "new_password", { type: "password", autocomplete: "new-password", required: true })],
      }
      : {
        heading: "Enter your code", button: "Sign in",
        intro: "Enter the six-digit code your authenticator app shows.",
        fields: [field("Code", "code", { inputmode: "numeric", autocomplete: "one-time-code", maxlength: 6,
          required: true })],
      };
    stepForm(view, { ...challenge, send: ([answer]) => answerChallenge(step, answer), next: afterAnswer })
      .focus();
  };
  const first = stepForm(view, {
    heading: "Sign in", button: "Sign in", notice,
    fields: [field("Email", "email", { type: "email", autocomplete: "username", required: true }),
      field("Password", "password", { type: "password", autocomplete: "current-password",
        required: true })],
    send: ([email, password]) => signIn(email.trim(), password),
    next: afterAnswer,
  });
  return first;
}
