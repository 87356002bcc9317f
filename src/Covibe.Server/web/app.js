// Covibe web client: plain ES modules, no build step; xterm.js (vendored at build time from npm) for terminals.
// This module puts the client together: the login (session.js), the hub connection and what its messages change, the
// tabs, and the menu. The Command Deck is agents.js and output.js, chat and presence chat.js, the Workshop
// changes.js (an agent's changes), spend.js (what agents spent), budgets.js (what they may), terminal.js, environment.js, egress.js, repository.js, machines.js and boxes.js, the Showcase showcase.js. Protocol: docs/protocol.md, docs/api.md.

import { createTerminals } from './terminal.js';
import { createEnvironment } from './environment.js';
import { createEgress } from './egress.js';
import { createRepository } from './repository.js';
import { createChanges } from './changes.js';
import { createShowcase } from './showcase.js';
import { createBoxes } from './boxes.js';
import { createMachines } from './machines.js';
import { createAgents } from './agents.js';
import { createSteering } from './steering.js';
import { createPush } from './push.js';
import { createChat } from './chat.js';
import { createSpend } from './spend.js';
import { createBudgets } from './budgets.js';
import { reconnectingSocket } from './socket.js';
import { $, el, toggle, formData } from './dom.js';
import { state } from './state.js';
import { api, signedIn, refresh, freshToken, signOut, onSignedOut } from './session.js';

onSignedOut(() => {
  hub.stop();
  terminals.stop();
  $('#app').hidden = true;
  $('#auth').hidden = false;
});

const changes = createChanges({ api: (path, options) => api(path, options) });
const push = createPush({ api: (path, options) => api(path, options), openAgent: (id) => agents.open(id) });
const steering = createSteering({ api: (path, options) => api(path, options), alert: (text) => alertLive(text), openAgent: (id) => agents.open(id) });
const agents = createAgents({
  api: (path, options) => api(path, options),
  send: (message) => hub.send(message),
  alert: (text) => alertLive(text),
  presenceChanged: () => chat.renderPresence(),
  changes,
  steering,
});

const chat = createChat({ api: (path) => api(path), send: (message) => hub.send(message) });
const spend = createSpend({ api: (path) => api(path) });
const budgets = createBudgets({ api: (path, options) => api(path, options), isOwner: () => state.team?.ownerId === state.me?.id });

// ---------- Terminals ----------

const terminals = createTerminals({
  token: () => state.token,
  me: () => state.me,
  refreshToken: freshToken,
  alert: (text) => alertLive(text),
  api: (path) => api(path),
});

const environment = createEnvironment({ api: (path) => api(path) });

const egress = createEgress({ api: (path, options) => api(path, options), isOwner: () => state.team?.ownerId === state.me?.id });
const repository = createRepository({ api: (path, options) => api(path, options), isOwner: () => state.team?.ownerId === state.me?.id });

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
  beforeRetry: freshToken,
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
      await Promise.all([agents.load(), chat.catchUp(), showcase.resync(), machines.refresh(), repository.refresh(), spend.refresh(), budgets.refresh()]);
      agents.resume();
      openFromAddress();
      break;
    case 'team_presence':
      state.presence = message.users;
      chat.renderPresence();
      break;
    case 'chat_message':
      chat.add([message]);
      break;
    case 'agent_status':
      agents.onStatus(message.agent);
      // An agent that ended (or a conversation's turn) has spent what it will: the Workshop's spend follows.
      if (['completed', 'failed', 'killed', 'lost', 'waiting'].includes(message.agent.status)) {
        spend.refresh();
        budgets.refresh();
      }
      break;
    case 'budget_reached':
      budgets.onReached(message);
      break;
    case 'agent_changes':
      changes.onChanges(message);
      break;
    case 'agent_branch':
      changes.onBranch(message);
      break;
    case 'agent_spawned':
      agents.onStatus(message.agent);
      agents.open(message.agent.id);
      break;
    case 'agent_output':
      agents.onOutput(message);
      break;
    case 'agent_output_gap':
      agents.onGap(message);
      break;
    case 'agent_output_end':
      agents.onEnd(message);
      break;
    case 'agent_permission_request':
      steering.onRequest(message);
      break;
    case 'agent_permission_answered':
      steering.onAnswered(message);
      break;
    case 'agent_action':
      steering.onAction(message);
      break;
    case 'agent_actions':
      steering.onActions(message);
      break;
    case 'agent_control_requested':
      steering.onControlRequested(message);
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
    case 'egress_blocked':
      // The team's egress policy refused a connection (npm install failing, say): say why, and list it.
      alertLive(message.block.message);
      egress.onBlocked(message.block);
      break;
    case 'egress_policy':
      egress.onPolicy(message.policy);
      break;
    case 'team_limit':
      // The team's limits on the server stopped something (a build killed for memory, a fork refused): say why.
      alertLive(message.message);
      break;
    case 'error':
      if (message.code === 'session_revoked') signOut();
      else if (message.requestType === 'join_team') { await refresh(); hub.drop(); }
      else showError(message.requestType, message.error);
      break;
  }
}

/** A notification's address (/?agent=ID) opens that agent once, then the address is plain again. */
function openFromAddress() {
  const id = new URLSearchParams(location.search).get('agent');
  if (!id) return;
  history.replaceState(null, '', '/');
  if (state.agents.has(id)) agents.open(id);
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
    egress.refresh();
    repository.refresh();
    machines.shown();
    boxes.shown();
  }
  if (tab === 'showcase') showcase.shown();
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
  push.start();
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

  agents.wire();
  chat.wire();
  $('#menu-button').addEventListener('click', () => toggle('#menu-button'));
  // The menu closes when you click or tap anywhere else, or press Escape.
  document.addEventListener('click', (event) => {
    if (!event.target.closest('.menu')) toggle('#menu-button', false);
  });
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') toggle('#menu-button', false);
  });
  $('#terminal-new').addEventListener('click', () => terminals.create());
  $('#terminal-sessions').addEventListener('change', (event) => terminals.attach(event.target.value));
  $('#terminal-share').addEventListener('click', () => terminals.toggleShare());
  $('#terminal-close').addEventListener('click', () => terminals.close());

  $('#invite-button').addEventListener('click', async () => {
    try { showInvite(await api('/api/team/invite', { method: 'POST', body: {} })); } catch (error) { alertLive(error.message); }
  });
  $('#notify-button').addEventListener('click', async () => {
    $('#notify-button').textContent = await push.enable();
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

// Test hook: lets end-to-end tests read state without scraping (no tokens exposed).
window.covibe = { terminals, showcase, get view() { return state.view && { id: state.view.id, next: state.view.next, complete: state.view.complete }; }, get connected() { return hub.connected; } };

async function main() {
  wire();
  const boot = $('#boot');
  const renewed = await refresh((pause) => {
    boot.hidden = false;
    boot.textContent = `Cannot reach Covibe; trying again in ${Math.round(pause / 1000)} s…`;
  });
  boot.hidden = true;
  if (renewed) {
    await enter({ accessToken: state.token, accessTokenExpiresAt: new Date(state.tokenExpires).toISOString(), user: state.me, team: state.team });
  } else {
    $('#auth').hidden = false;
  }
}

main();
