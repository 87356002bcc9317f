// Covibe web client: plain ES modules, no build step; xterm.js (vendored at build time from npm) for terminals.
// The access token lives in memory only; the refresh token in an HttpOnly cookie the server sets
// (X-Covibe-Client: web), so no script can read it. Protocol: docs/protocol.md, docs/api.md.

import { createTerminals } from './terminal.js';
import { createEnvironment } from './environment.js';
import { createShowcase } from './showcase.js';
import { createBoxes } from './boxes.js';
import { createMachines } from './machines.js';
import { reconnectingSocket } from './socket.js';

const $ = (selector) => document.querySelector(selector);
const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child);
  return node;
};

const FINAL = new Set(['completed', 'failed', 'killed', 'lost']);
const MAX_READABLE_NODES = 1500;
const MAX_RAW_CHARS = 4 * 1024 * 1024;

const state = {
  token: null,
  tokenExpires: 0,
  refreshTimer: null,
  me: null,
  team: null,
  agents: new Map(),
  presence: [],
  lastChatId: 0,
  oldestChatId: null,
  view: null, // the open agent: { id, next, complete, lines, raw, readableCount, rawChars }
  tab: 'deck',
  types: new Map(),
};

// ---------- HTTP ----------

async function api(path, { method = 'GET', body, retry = true } = {}) {
  const headers = { 'X-Covibe-Client': 'web' };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const reply = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  if (reply.status === 401 && retry && state.token && !path.startsWith('/api/auth/')) {
    if (await refresh()) return api(path, { method, body, retry: false });
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
  return reply.status === 204 ? null : reply.json();
}

function signedIn(auth) {
  state.token = auth.accessToken;
  state.tokenExpires = Date.parse(auth.accessTokenExpiresAt);
  state.me = auth.user;
  state.team = auth.team;
  clearTimeout(state.refreshTimer);
  // Refresh a minute before the access token expires, without the user noticing.
  state.refreshTimer = setTimeout(refresh, Math.max(5_000, state.tokenExpires - Date.now() - 60_000));
}

async function refresh() {
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

function signOut() {
  state.token = null;
  clearTimeout(state.refreshTimer);
  hub.stop();
  terminals.stop();
  $('#app').hidden = true;
  $('#auth').hidden = false;
}

// ---------- Terminals ----------

const terminals = createTerminals({
  token: () => state.token,
  me: () => state.me,
  refreshToken: async () => { if (state.tokenExpires - Date.now() < 60_000) await refresh(); },
  alert: (text) => alertLive(text),
  api: (path) => api(path),
});

const environment = createEnvironment({ api: (path) => api(path) });

const boxes = createBoxes({
  api: (path, options) => api(path, options),
  me: () => state.me,
  alert: (text) => alertLive(text),
  openTerminal: (boxId) => terminals.createIn(boxId),
  changed: () => renderWhere(),
});

const machines = createMachines({
  api: (path, options) => api(path, options),
  me: () => state.me,
  alert: (text) => alertLive(text),
  changed: () => renderWhere(),
});

/** Where a new agent can run: the server, one of your VMs (over SSH or through its runner), or one of your ready boxes. */
function renderWhere() {
  const where = $('#spawn-box');
  const chosen = where.value;
  const places = [
    ...machines.mine().map((vm) => new Option(`on ${vm.name} (${vm.status})`, `vm:${vm.id}`)),
    ...boxes.mine().map((b) => new Option(`in box ${b.repoUrl.split('/').pop()} (${b.branch}) ${b.id.slice(-6)}`, `box:${b.id}`)),
  ];
  where.replaceChildren(new Option('on the server', ''), ...places);
  where.value = places.some((o) => o.value === chosen) ? chosen : '';
}

const showcase = createShowcase({
  api: Object.assign((path, options) => api(path, options), { token: () => state.token }),
  isOwner: () => state.team?.ownerId === state.me?.id,
  alert: (text) => alertLive(text),
});

// ---------- Hub ----------

const hub = reconnectingSocket({
  path: '/ws',
  onOpen: (socket) => {
    connection('connecting');
    socket.send(JSON.stringify({ type: 'join_team', teamId: state.team.id, token: state.token, followAgents: false }));
  },
  onMessage: (message) => onMessage(message),
  onDown: () => connection('down'),
  beforeRetry: async () => { if (state.tokenExpires - Date.now() < 60_000) await refresh(); },
});

window.addEventListener('offline', () => { hub.drop(); terminals.drop(); connection('down'); });
window.addEventListener('online', () => { hub.now(); terminals.reconnectNow(); });

function connection(status) {
  const node = $('#connection');
  node.className = `connection ${status === 'live' ? 'live' : status === 'down' ? 'down' : ''}`;
  node.querySelector('.label').textContent = status === 'live' ? 'Live' : status === 'down' ? 'Reconnecting…' : 'Connecting…';
}

async function onMessage(message) {
  switch (message.type) {
    case 'team_joined':
      hub.joined();
      connection('live');
      // Catch up on everything missed while away, then continue live: no gap, no duplicate.
      await Promise.all([loadAgents(), catchUpChat(), showcase.resync(), machines.refresh()]);
      if (state.view && !state.view.complete) hub.send({ type: 'agent_subscribe', agentId: state.view.id, from: state.view.next });
      break;
    case 'team_presence':
      state.presence = message.users;
      renderPresence();
      break;
    case 'chat_message':
      addChat([message]);
      break;
    case 'agent_status':
      onAgentStatus(message.agent);
      break;
    case 'agent_spawned':
      onAgentStatus(message.agent);
      openAgent(message.agent.id);
      break;
    case 'agent_output':
      onOutput(message);
      break;
    case 'agent_output_gap':
      // Bytes this server cannot read (on another machine's disk only): say so where they would have been.
      if (state.view?.id === message.agentId && message.from === state.view.next) {
        state.view.next = message.to;
        flushLine();
        renderLine(`[output ${message.from}–${message.to} is not available on this server: ${message.reason}]`);
      }
      break;
    case 'agent_output_end':
      if (state.view?.id === message.agentId && message.next === state.view.next) {
        state.view.complete = true;
        flushLine();
      }
      break;
    case 'preview_status':
      showcase.onStatus(message.preview);
      break;
    case 'box_updated':
      boxes.onUpdated(message.box);
      break;
    case 'vm_updated':
      machines.onUpdated(message.vm);
      break;
    case 'preview_updated':
      showcase.onUpdated(message);
      break;
    case 'error':
      if (message.code === 'session_revoked') signOut();
      else if (message.requestType === 'join_team') { await refresh(); hub.drop(); }
      else showError(message.requestType, message.error);
      break;
  }
}

function showError(requestType, text) {
  // The spawn form closes on submit, so its refusal (e.g. too many agents) shows as a toast too.
  alertLive(requestType === 'agent_spawn' ? `Not spawned: ${text}` : text);
}

let toastTimer = null;
function alertLive(text) {
  const node = $('#toast');
  node.textContent = text;
  node.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { node.hidden = true; }, 6000);
}

// ---------- Agents ----------

async function loadAgents() {
  const { agents } = await api('/api/agent/list');
  state.agents = new Map(agents.map((a) => [a.id, a]));
  renderAgents();
  if (state.view) renderAgentHeader();
  renderPresence();
}

function onAgentStatus(agent) {
  const before = state.agents.get(agent.id);
  state.agents.set(agent.id, agent);
  renderAgents();
  renderPresence();
  if (state.view?.id === agent.id) renderAgentHeader();
  // Live changes only (a reconnect reloads the list without notifying).
  if (agent.ownerId === state.me.id && before && before.status !== agent.status && (FINAL.has(agent.status) || agent.status === 'waiting')) {
    notify(agent);
  }
}

function notify(agent) {
  if (!('Notification' in window) || Notification.permission !== 'granted') return;
  const verb = { completed: 'finished', failed: 'failed', killed: 'was killed', lost: 'was lost', waiting: 'waits for your input' }[agent.status];
  new Notification(`Your agent ${verb}`, { body: agent.task, tag: agent.id });
}

function elapsed(agent) {
  const start = Date.parse(agent.startedAt ?? agent.createdAt);
  const end = agent.completedAt ? Date.parse(agent.completedAt) : Date.now();
  const s = Math.max(0, Math.round((end - start) / 1000));
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

const cost = (agent) => (agent.costUsd == null ? '' : `$${agent.costUsd.toFixed(4)}`);

const RUNS_ON = { container: 'in a container', sandbox: 'sandboxed', ssh: 'on a VM', runner: 'on a VM (runner)', box: 'in a box', local: 'on the server' };

function renderAgents() {
  const list = $('#agents');
  const agents = [...state.agents.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  list.replaceChildren(...agents.map((agent) => el('li', { class: 'agent-item' },
    el('button', {
      type: 'button', 'aria-current': state.view?.id === agent.id ? 'true' : 'false', dataset: { agent: agent.id },
      onclick: () => openAgent(agent.id),
    },
    el('span', { class: 'task' }, agent.task),
    el('span', { class: 'meta' },
      el('span', {}, agent.ownerId === state.me.id ? `${agent.ownerName} (you)` : agent.ownerName),
      el('span', { class: `badge ${agent.status}` }, agent.status),
      agent.runsOn ? el('span', {}, RUNS_ON[agent.runsOn] ?? agent.runsOn) : null,
      el('span', { dataset: { elapsed: agent.id } }, elapsed(agent)),
      cost(agent) ? el('span', {}, cost(agent)) : null)))));
  $('#agents-empty').hidden = agents.length > 0;
}

setInterval(() => {
  for (const node of document.querySelectorAll('[data-elapsed]')) {
    const agent = state.agents.get(node.dataset.elapsed);
    if (agent && !FINAL.has(agent.status)) node.textContent = elapsed(agent);
  }
}, 1000);

function openAgent(id) {
  if (state.view?.id === id) return;
  if (state.view) hub.send({ type: 'agent_unsubscribe', agentId: state.view.id });
  state.view = { id, next: 0, complete: false, line: '', decoder: new TextDecoder('utf-8'), readableCount: 0, rawChars: 0, tools: new Map() };
  $('#output-readable').replaceChildren();
  $('#output-raw').replaceChildren();
  $('#agent-view').hidden = false;
  $('#deck').classList.add('viewing');
  renderAgentHeader();
  renderAgents();
  hub.send({ type: 'agent_subscribe', agentId: id, from: 0 });
}

function closeAgent() {
  if (state.view) hub.send({ type: 'agent_unsubscribe', agentId: state.view.id });
  state.view = null;
  $('#agent-view').hidden = true;
  $('#deck').classList.remove('viewing');
  renderAgents();
}

function renderAgentHeader() {
  const agent = state.agents.get(state.view.id);
  if (!agent) return;
  $('#agent-task').textContent = agent.task;
  $('#agent-owner').textContent = agent.ownerId === state.me.id ? `${agent.ownerName} (you)` : agent.ownerName;
  const badge = $('#agent-status');
  badge.textContent = agent.status;
  badge.className = `badge ${agent.status}`;
  $('#agent-meta').textContent = [agent.type, elapsed(agent), cost(agent)].filter(Boolean).join(' · ');
  const mine = agent.canControl && !FINAL.has(agent.status);
  $('#agent-controls').hidden = !mine;
  $('#input-form').hidden = !mine;
  $('#agent-end').hidden = !(mine && agent.status === 'waiting');
}

function decode(message) {
  if (message.encoding !== 'base64') return message.data;
  const bytes = Uint8Array.from(atob(message.data), (c) => c.charCodeAt(0));
  return state.view.decoder.decode(bytes, { stream: true });
}

function onOutput(message) {
  const view = state.view;
  if (!view || message.agentId !== view.id || message.position !== view.next) return; // not ours, or already seen
  view.next = message.next;
  const text = decode(message);
  const output = $('#output');
  const atEnd = output.scrollHeight - output.scrollTop - output.clientHeight < 40;
  appendRaw(text);
  view.line += text;
  let newline;
  while ((newline = view.line.indexOf('\n')) >= 0) {
    renderLine(view.line.slice(0, newline));
    view.line = view.line.slice(newline + 1);
  }
  if (atEnd) output.scrollTop = output.scrollHeight;
  $('#jump-end').hidden = atEnd;
}

function flushLine() {
  if (state.view?.line) {
    renderLine(state.view.line);
    state.view.line = '';
  }
}

function appendRaw(text) {
  const raw = $('#output-raw');
  raw.append(document.createTextNode(text));
  state.view.rawChars += text.length;
  // Keep the DOM small on huge outputs: the whole output stays available through the API.
  while (state.view.rawChars > MAX_RAW_CHARS && raw.firstChild) {
    state.view.rawChars -= raw.firstChild.textContent.length;
    raw.firstChild.remove();
  }
}

function renderLine(line) {
  const readable = $('#output-readable');
  const view = state.view;
  let parsed = null;
  if (line.startsWith('{')) {
    try { parsed = JSON.parse(line); } catch { /* a half line or plain text */ }
  }
  const nodes = parsed ? eventNodes(parsed) : line.trim() ? [el('pre', { class: 'ev-output' }, line)] : [];
  for (const node of nodes) {
    readable.append(node);
    view.readableCount++;
  }
  if (view.readableCount > MAX_READABLE_NODES) {
    while (view.readableCount > MAX_READABLE_NODES * 0.8) {
      readable.firstChild.remove();
      view.readableCount--;
    }
    if (!readable.querySelector('.trimmed')) readable.prepend(el('p', { class: 'trimmed' }, 'Earlier output is hidden to keep this page fast; the Raw view holds the last 4 MB.'));
  }
}

function eventNodes(event) {
  const view = state.view;
  switch (event.type) {
    case 'system':
      return [el('p', { class: event.subtype === 'init' ? 'ev-init' : 'ev-system' }, event.subtype === 'init' ? `● started${event.model ? ` (${event.model})` : ''}` : `· ${event.subtype}`)];
    case 'assistant':
    case 'user': {
      const content = event.message?.content;
      if (typeof content === 'string') return [el('p', { class: 'ev-text' }, content)];
      return (content ?? []).flatMap((block) => {
        if (block.type === 'text') return [el('p', { class: 'ev-text' }, block.text)];
        if (block.type === 'thinking') return [el('p', { class: 'ev-thinking' }, block.thinking)];
        if (block.type === 'tool_use') {
          const details = el('details', { class: 'ev-tool' }, el('summary', {}, `→ ${block.name}: ${summary(block.input)}`), el('pre', {}, JSON.stringify(block.input, null, 2)));
          view.tools.set(block.id, details);
          return [details];
        }
        if (block.type === 'tool_result') {
          const text = typeof block.content === 'string' ? block.content : (block.content ?? []).map((b) => b.text ?? '').join('\n');
          const tool = view.tools.get(block.tool_use_id);
          const result = el('pre', {}, text.length > 20_000 ? `${text.slice(0, 20_000)}… (${text.length} characters)` : text);
          if (tool) {
            tool.append(result);
            if (block.is_error) tool.classList.add('error');
            return [];
          }
          return [el('details', { class: `ev-tool${block.is_error ? ' error' : ''}` }, el('summary', {}, '← result'), result)];
        }
        return [];
      });
    }
    case 'result': {
      const totals = event.total_cost_usd == null ? '' : `  ($${event.total_cost_usd.toFixed(4)} · ${event.usage?.input_tokens ?? 0} in / ${event.usage?.output_tokens ?? 0} out tokens)`;
      return [el('p', { class: `ev-result${event.is_error ? ' error' : ''}` }, `${event.is_error ? '✗' : '✓'} ${event.result ?? event.subtype}${totals}`)];
    }
    default:
      return [];
  }
}

function summary(input) {
  if (!input || typeof input !== 'object') return '';
  for (const key of ['command', 'file_path', 'path', 'pattern', 'url', 'description']) {
    if (typeof input[key] === 'string') return input[key].length > 120 ? `${input[key].slice(0, 120)}…` : input[key];
  }
  const text = JSON.stringify(input);
  return text.length > 120 ? `${text.slice(0, 120)}…` : text;
}

async function control(path, body) {
  try {
    await api(`/api/agent/${state.view.id}/${path}`, { method: 'POST', body });
  } catch (error) {
    alertLive(error.message);
  }
}

// ---------- Chat and presence ----------

async function catchUpChat() {
  if (state.lastChatId === 0) {
    const page = await api('/api/chat/history?limit=50');
    state.oldestChatId = page.nextBefore;
    addChat(page.messages);
    $('#chat-earlier').hidden = page.nextBefore == null;
    return;
  }
  for (;;) {
    const page = await api(`/api/chat/history?after=${state.lastChatId}&limit=200`);
    addChat(page.messages);
    if (page.messages.length < 200) break;
  }
}

function chatItem(m) {
  const time = new Date(m.timestamp).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return el('li', { dataset: { id: m.id } },
    el('span', { class: 'from' }, el('strong', {}, m.userName), ` · ${time}`),
    el('span', { class: 'text' }, m.message));
}

function addChat(messages) {
  const list = $('#chat');
  const atEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  for (const m of messages) {
    if (m.id <= state.lastChatId) continue; // seen already (live and caught-up copies)
    state.lastChatId = m.id;
    list.append(chatItem(m));
  }
  if (atEnd || messages.some((m) => m.userId === state.me?.id)) list.scrollTop = list.scrollHeight;
}

async function loadEarlierChat() {
  if (state.oldestChatId == null) return;
  const page = await api(`/api/chat/history?before=${state.oldestChatId}&limit=50`);
  $('#chat').prepend(...page.messages.map(chatItem));
  state.oldestChatId = page.nextBefore;
  $('#chat-earlier').hidden = page.nextBefore == null;
}

function renderPresence() {
  const running = (userId) => [...state.agents.values()].filter((a) => a.ownerId === userId && !FINAL.has(a.status));
  $('#presence').replaceChildren(...state.presence.map((user) => {
    const agents = running(user.userId);
    return el('li', { dataset: { user: user.userId, status: user.status } },
      el('span', { class: `avatar ${user.status}`, 'aria-hidden': 'true' }, user.name.slice(0, 1).toUpperCase()),
      el('div', { class: 'who' },
        el('p', {}, user.userId === state.me.id ? `${user.name} (you)` : user.name),
        el('p', { class: 'muted' }, `${user.status}${agents.length ? ` · runs ${agents.length} agent${agents.length > 1 ? 's' : ''}` : ''}`)));
  }));
}

// ---------- Tabs and forms ----------

function showTab(tab) {
  state.tab = tab;
  for (const button of document.querySelectorAll('.tabs [role="tab"]')) {
    const selected = button.dataset.tab === tab;
    button.setAttribute('aria-selected', selected);
    button.tabIndex = selected ? 0 : -1; // one tab stop for the tab list; arrows move within it
    $(`#${button.dataset.tab}`).hidden = !selected;
  }
  if (tab === 'workshop') {
    terminals.shown();
    environment.shown();
    machines.shown();
    boxes.shown();
  }
  if (tab === 'showcase') showcase.shown();
}

function formData(form) {
  const data = {};
  for (const [key, value] of new FormData(form)) data[key] = typeof value === 'string' && value.trim() === '' ? null : value;
  return data;
}

async function enter(auth) {
  signedIn(auth);
  $('#auth').hidden = true;
  $('#app').hidden = false;
  $('#team-name').textContent = state.team.name;
  $('#me-name').textContent = `${state.me.name} · ${state.me.email}`;
  const types = await api('/api/agent/types');
  state.types = new Map(types.map((t) => [t.name, t]));
  $('#agent-types').replaceChildren(...types.map((t) => el('option', { value: t.name }, t.description ? `${t.name}: ${t.description}` : t.name)));
  hub.start();
  terminals.start();
}

function wire() {
  for (const button of document.querySelectorAll('[data-auth]')) {
    button.addEventListener('click', () => {
      for (const other of document.querySelectorAll('[data-auth]')) other.setAttribute('aria-selected', other === button);
      for (const form of document.querySelectorAll('[data-auth-form]')) form.hidden = form.dataset.authForm !== button.dataset.auth;
      $('#auth-error').textContent = '';
    });
  }
  const authSubmit = (path, map) => async (event) => {
    event.preventDefault();
    $('#auth-error').textContent = '';
    try {
      const reply = await api(path, { method: 'POST', body: map(formData(event.target)) });
      await enter(reply.auth ?? reply);
      if (reply.invite) showInvite(reply.invite);
    } catch (error) {
      $('#auth-error').textContent = error.message;
      // This server lets only holders of the operator's signup token create teams: ask for it.
      if (error.type?.endsWith('/signup-token-required')) $('#signup-token-field').hidden = false;
    }
  };
  $('#form-join').addEventListener('submit', authSubmit('/api/auth/login', (d) => d));
  $('#form-login').addEventListener('submit', authSubmit('/api/auth/login', (d) => d));
  $('#form-create').addEventListener('submit', authSubmit('/api/team/create', (d) => d));

  for (const button of document.querySelectorAll('.tabs [role="tab"]')) button.addEventListener('click', () => showTab(button.dataset.tab));
  // The WAI-ARIA tabs pattern: Left/Right (and Home/End) move between tabs and select them.
  $('.tabs').addEventListener('keydown', (event) => {
    const tabs = [...document.querySelectorAll('.tabs [role="tab"]')];
    const at = tabs.findIndex((t) => t.dataset.tab === state.tab);
    const next = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: tabs.length - 1 }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    const tab = tabs[(next + tabs.length) % tabs.length];
    showTab(tab.dataset.tab);
    tab.focus();
  });

  $('#spawn-form').addEventListener('submit', (event) => {
    event.preventDefault();
    $('#spawn-error').textContent = '';
    const data = formData(event.target);
    const [kind, id] = (data.where ?? '').split(':');
    hub.send({
      type: 'agent_spawn', task: data.task, agentType: data.agentType, repositoryUrl: data.repositoryUrl, branch: data.branch,
      vmId: kind === 'vm' ? id : undefined, boxId: kind === 'box' ? id : undefined, clientId: crypto.randomUUID(),
    });
    event.target.reset();
    toggle('#spawn-toggle', false);
  });
  $('#agent-back').addEventListener('click', closeAgent);
  $('#spawn-toggle').addEventListener('click', () => toggle('#spawn-toggle'));
  $('#menu-button').addEventListener('click', () => toggle('#menu-button'));
  // The menu closes when you click or tap anywhere else, or press Escape.
  document.addEventListener('click', (event) => {
    if (!event.target.closest('.menu')) toggle('#menu-button', false);
  });
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') toggle('#menu-button', false);
  });
  $('#agent-kill').addEventListener('click', async () => {
    try { await api(`/api/agent/${state.view.id}`, { method: 'DELETE' }); } catch (error) { alertLive(error.message); }
  });
  $('#agent-interrupt').addEventListener('click', () => control('interrupt'));
  $('#agent-end').addEventListener('click', () => control('end'));
  $('#input-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const input = $('#agent-input');
    const agent = state.agents.get(state.view.id);
    // A conversational agent takes a message; anything else reads lines from stdin.
    const data = state.types.get(agent?.type)?.conversational ? input.value : `${input.value}\n`;
    if (!input.value) return;
    input.value = '';
    await control('input', { data });
  });
  const setView = (raw) => {
    $('#view-raw').setAttribute('aria-pressed', raw);
    $('#view-readable').setAttribute('aria-pressed', !raw);
    $('#output-raw').hidden = !raw;
    $('#output-readable').hidden = raw;
  };
  $('#view-raw').addEventListener('click', () => setView(true));
  $('#view-readable').addEventListener('click', () => setView(false));
  $('#output').addEventListener('scroll', () => {
    const output = $('#output');
    $('#jump-end').hidden = output.scrollHeight - output.scrollTop - output.clientHeight < 40;
  });
  $('#jump-end').addEventListener('click', () => { const o = $('#output'); o.scrollTop = o.scrollHeight; });

  $('#chat-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = $('#chat-input');
    if (!input.value.trim()) return;
    hub.send({ type: 'chat_message', message: input.value, clientId: crypto.randomUUID() });
    input.value = '';
  });
  $('#chat-earlier').addEventListener('click', loadEarlierChat);
  $('#terminal-new').addEventListener('click', () => terminals.create());
  $('#terminal-sessions').addEventListener('change', (event) => terminals.attach(event.target.value));
  $('#terminal-share').addEventListener('click', () => terminals.toggleShare());
  $('#terminal-close').addEventListener('click', () => terminals.close());

  $('#invite-button').addEventListener('click', async () => {
    try { showInvite(await api('/api/team/invite', { method: 'POST', body: {} })); } catch (error) { alertLive(error.message); }
  });
  $('#notify-button').addEventListener('click', async () => {
    if ('Notification' in window) $('#notify-button').textContent = (await Notification.requestPermission()) === 'granted' ? 'Notifications on' : 'Notifications blocked';
  });
  $('#logout-button').addEventListener('click', async () => {
    try { await api('/api/auth/logout', { method: 'POST' }); } finally { signOut(); location.reload(); }
  });
  document.addEventListener('visibilitychange', () => {
    hub.send({ type: 'presence_update', status: document.hidden ? 'away' : 'online' });
    if (!document.hidden) { hub.now(); terminals.reconnectNow(); }
  });
}

function showInvite(invite) {
  const node = $('#invite-code');
  node.hidden = false;
  node.textContent = invite.inviteCode;
  node.title = `Valid until ${new Date(invite.expiresAt).toLocaleString()}`;
  toggle('#menu-button', true);
}

// A disclosure button (aria-expanded) and the panel it controls.
function toggle(button, open) {
  const node = $(button);
  const expanded = open ?? node.getAttribute('aria-expanded') !== 'true';
  node.setAttribute('aria-expanded', expanded);
  document.getElementById(node.getAttribute('aria-controls')).hidden = !expanded;
}

// Test hook: lets end-to-end tests read state without scraping (no tokens exposed).
window.covibe = { terminals, showcase, get view() { return state.view && { id: state.view.id, next: state.view.next, complete: state.view.complete }; }, get connected() { return hub.connected; } };

async function main() {
  wire();
  if (await refresh()) {
    await enter({ accessToken: state.token, accessTokenExpiresAt: new Date(state.tokenExpires).toISOString(), user: state.me, team: state.team });
  } else {
    $('#auth').hidden = false;
  }
}

main();
