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
  state.refreshTimer = setTimeout(refresh, Math.max(5_000, state.tokenExpires - Date.now() - 60_000));
}

export async function refresh() {
  try {
    const auth = await fetch('/api/auth/refresh', { method: 'POST', headers: { 'X-Covibe-Client': 'web' }, credentials: 'same-origin' });
    if (!auth.ok) throw new Error('signed out');
    signedIn(await auth.json());
    return true;
  } catch {
    if (state.token) signOut();
    return false;
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
