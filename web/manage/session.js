// Signing in to the operators' Cognito user pool, and calling the admin API with the session's token.
//
// Sign-in is Cognito's USER_PASSWORD_AUTH, called straight from the page (unsigned, as Cognito takes it from a
// browser): InitiateAuth, then RespondToAuthChallenge for a first sign-in's NEW_PASSWORD_REQUIRED or an
// authenticator app's SOFTWARE_TOKEN_MFA (docs/architecture.md, "Admin sign-in"). The tokens live in this tab's
// sessionStorage, never localStorage: they end with the tab, and no other tab or later visitor of this browser finds
// them. An API answer of 401 (the access token expired: it lives an hour) refreshes the tokens once with the refresh
// token and repeats the call; when that fails too, the session has ended and the page asks to sign in again.
import { ProblemError, request } from "../api.js";
import { adminConfig } from "./config.js";

const SESSION = "storefront.admin.session"; // sessionStorage: {email, username, accessToken, refreshToken, groups}

export class SignInError extends Error {
  // `code` is Cognito's error type (NotAuthorizedException, InvalidPasswordException, CodeMismatchException...).
  constructor(code, message) {
    super(message);
    this.name = "SignInError";
    this.code = code;
  }
}

let pool = null; // {clientId, endpoint}, found once

async function poolSettings() {
  if (pool) return pool;
  if (adminConfig.cognito) {
    const { region, clientId } = adminConfig.cognito;
    pool = { clientId, endpoint: `https://cognito-idp.${region}.amazonaws.com/` };
    return pool;
  }
  try { // the local stack tells which pool it runs (and where moto serves it); a deployed API has no /dev routes
    const { data } = await request("GET", "/dev/auth/config");
    pool = { clientId: data.client_id, endpoint: `${data.cognito_endpoint.replace(/\/+$/, "")}/` };
    return pool;
  } catch (error) {
    if (error.status !== 404) throw error;
    throw new SignInError("NotConfigured", "This admin page does not know its user pool yet: set `cognito` in "
      + "manage/config.js (docs/admin.md).");
  }
}

async function cognito(action, body) {
  const { endpoint } = await poolSettings();
  let response;
  try {
    response = await fetch(endpoint, {
      method: "POST",
      headers: {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": `AWSCognitoIdentityProviderService.${action}`,
      },
      body: JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw new SignInError("NetworkError", "The sign-in service cannot be reached. Check your connection and try again.");
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const code = String(data.__type ?? "").split("#").pop() || `HTTP ${response.status}`;
    throw new SignInError(code, data.message || data.Message || `The sign-in service answered ${response.status}.`);
  }
  return data;
}

export function current() {
  return JSON.parse(sessionStorage.getItem(SESSION) ?? "null");
}

function save(session) {
  sessionStorage.setItem(SESSION, JSON.stringify(session));
  return session;
}

export const isAdmin = () => current()?.groups.includes("admin") ?? false;

// Cognito's answer: signed in ({signedIn: true}), or a challenge to answer ({challenge, session, username}).
async function settle(email, answer) {
  if (answer.AuthenticationResult) {
    const result = answer.AuthenticationResult;
    save({ email, accessToken: result.AccessToken, refreshToken: result.RefreshToken, groups: [], username: "" });
    let me;
    try {
      me = (await call("GET", "/admin/me")).data; // the groups decide what the page offers
    } catch (error) {
      await signOut();
      if (error.code !== "forbidden") throw error;
      throw new SignInError("NoGroup", "Your account is in neither the admin nor the staff group: ask an admin "
        + "to add you to one.");
    }
    save({ ...current(), groups: me.groups, username: me.username });
    return { signedIn: true };
  }
  return { challenge: answer.ChallengeName, session: answer.Session, email,
    username: answer.ChallengeParameters?.USERNAME ?? email };
}

export async function signIn(email, password) {
  const { clientId } = await poolSettings();
  return settle(email, await cognito("InitiateAuth", {
    ClientId: clientId, AuthFlow: "USER_PASSWORD_AUTH", AuthParameters: { USERNAME: email, PASSWORD: password },
  }));
}

// `step` is what signIn (or an earlier answer) returned; `response` the new password or the app's code.
export async function answerChallenge(step, response) {
  const { clientId } = await poolSettings();
  const responses = { USERNAME: step.username };
  if (step.challenge === "NEW_PASSWORD_REQUIRED") responses.NEW_PASSWORD = response;
  else if (step.challenge === "SOFTWARE_TOKEN_MFA") responses.SOFTWARE_TOKEN_MFA_CODE = response;
  else throw new SignInError(step.challenge, `This page cannot answer the sign-in step ${step.challenge}.`);
  return settle(step.email, await cognito("RespondToAuthChallenge", {
    ClientId: clientId, ChallengeName: step.challenge, Session: step.session, ChallengeResponses: responses,
  }));
}

async function refresh() {
  const session = current();
  if (!session?.refreshToken) return false;
  try {
    const { clientId } = await poolSettings();
    const answer = await cognito("InitiateAuth", {
      ClientId: clientId, AuthFlow: "REFRESH_TOKEN_AUTH", AuthParameters: { REFRESH_TOKEN: session.refreshToken },
    });
    save({ ...session, accessToken: answer.AuthenticationResult.AccessToken });
    return true;
  } catch {
    return false; // revoked, expired (12 hours) or unreachable: sign in again
  }
}

// Revokes the refresh token (so this tab's copy is worthless) and forgets the session. The access token is not
// revoked for API Gateway, which never asks Cognito: it lapses within the hour, as docs/architecture.md says.
export async function signOut() {
  const session = current();
  sessionStorage.removeItem(SESSION);
  if (!session?.refreshToken) return;
  const { clientId } = await poolSettings();
  await cognito("RevokeToken", { ClientId: clientId, Token: session.refreshToken }).catch(() => {});
}

// Thrown when the API refused the session and refreshing did not help: the page shows the sign-in form.
export class SessionEnded extends Error {
  constructor() {
    super("Your session has ended. Sign in again to continue.");
    this.name = "SessionEnded";
  }
}

// An admin API call ({data, status, headers}, or ProblemError as web/api.js throws it) with the session's token.
export async function call(method, path, { body, headers = {}, signal } = {}) {
  const send = () => request(method, path, {
    body, signal, headers: { ...headers, Authorization: `Bearer ${current()?.accessToken}` },
  });
  if (!current()) throw new SessionEnded();
  try {
    return await send();
  } catch (error) {
    if (!(error instanceof ProblemError) || error.status !== 401) throw error;
    if (!(await refresh())) {
      sessionStorage.removeItem(SESSION);
      window.dispatchEvent(new Event("session-ended"));
      throw new SessionEnded();
    }
    return send();
  }
}

// The presigned POST of an image upload (POST /admin/products/{id}/images): the fields, then the file, straight to
// the images bucket (docs/api.md, "Images"). S3 answers 204; its refusals are XML, turned into a sentence here.
export async function uploadToBucket(upload, file) {
  const form = new FormData();
  for (const [name, value] of Object.entries(upload.fields)) form.append(name, value);
  form.append("file", file);
  let response;
  try {
    response = await fetch(upload.url, { method: "POST", body: form });
  } catch {
    throw new ProblemError(0, { title: "Network error", detail: "The image could not be sent. Try again." });
  }
  if (!response.ok) {
    const xml = await response.text();
    const message = xml.match(/<Message>([^<]*)<\/Message>/)?.[1] ?? `The images bucket answered ${response.status}.`;
    throw new ProblemError(response.status, { title: "Upload refused", detail: message, code: "upload_refused" });
  }
}
