// The REST client and the login it carries. The access token lives in memory only; the refresh token in an HttpOnly
// cookie the server sets (X-Covibe-Client: web), so no script can read it.

import { state } from './state.js';

let signedOut = () => {};

/** What to do when the login ends (signed out, revoked, or no longer refreshable). */
export function onSignedOut(callback) { signedOut = callback; }

/**
 * Calls the API; a 401 refreshes the login once and retries; a refusal throws an Error with the problem's words.
 * `text`: the answer as text (a diff); `raw`: the Response itself (bytes, and headers such as Covibe-Next).
 */
export async function api(path, { method = 'GET', body, retry = true, text = false, raw = false } = {}) {
  const headers = { 'X-Covibe-Client': 'web' };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const reply = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  if (reply.status === 401 && retry && state.token && !path.startsWith('/api/auth/')) {
    if (await refresh()) return api(path, { method, body, retry: false, text, raw });
  }
  if (!reply.ok) {
    let problem = {};
    try { problem = await reply.json(); } catch { /* not JSON */ }
    const details = problem.errors ? Object.values(problem.errors).flat().join(' ') : '';
    const error = new Error(details || problem.detail || problem.title || `The server answered ${reply.status}.`);
    error.status = reply.status;
    error.type = problem.type;
    throw error;
  }
  if (raw) return reply;
  if (reply.status === 204) return null;
  return text ? reply.text() : reply.json();
}

export function signedIn(auth) {
  state.token = auth.accessToken;
  state.tokenExpires = Date.parse(auth.accessTokenExpiresAt);
  state.me = auth.user;
  state.team = auth.team;
  clearTimeout(state.refreshTimer);
  // Refresh a minute before the access token expires, without the user noticing.
  state.refreshTimer = setTimeout(() => refresh(), Math.max(5_000, state.tokenExpires - Date.now() - 60_000));
}

let renewing = null;

/**
 * Renews the login from the refresh cookie: true once renewed, false when the server says the login has ended. A
 * server that cannot be reached (offline, a restart, a proxy's 502) is asked again, with longer pauses, until it answers:
 * a network blip never signs a member out. One renewal at a time (the cookie rotates: a second use would end the login).
 * `waiting(ms)` is told of each pause.
 */
export function refresh(waiting = () => {}) {
  renewing ??= renew(waiting).finally(() => { renewing = null; });
  return renewing;
}

async function renew(waiting) {
  for (let attempt = 0; ; attempt++) {
    let reply = null;
    try {
      reply = await fetch('/api/auth/refresh', { method: 'POST', headers: { 'X-Covibe-Client': 'web' }, credentials: 'same-origin' });
    } catch { /* not reached */ }
    if (reply?.ok) {
      signedIn(await reply.json());
      return true;
    }
    if (reply && reply.status < 500 && reply.status !== 429) {
      if (state.token) signOut();
      return false;
    }
    const pause = Math.min(30_000, 500 * 2 ** attempt);
    waiting(pause);
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

/** Refreshes the login if it expires within a minute (before a reconnect). */
export async function freshToken() {
  if (state.tokenExpires - Date.now() < 60_000) await refresh();
}

export function signOut() {
  state.token = null;
  clearTimeout(state.refreshTimer);
  signedOut();
}
