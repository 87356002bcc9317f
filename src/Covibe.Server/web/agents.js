// The Command Deck: the team's agents, the open agent's header and output, its owner's controls, and the spawn form.

import { $, el, toggle, formData } from './dom.js';
import { FINAL, state } from './state.js';
import { onOutput, flushLine, endOutput, renderLine, newView, openView, tailStart, followEnd, wireFollowing } from './output.js';
import { downloadOutput } from './download.js';

/** `send` puts a message on the hub; `presenceChanged` redraws who runs what. */
export function createAgents({ api, send, alert, presenceChanged, changes, steering }) {
  async function loadAgents() {
    const { agents } = await api('/api/agent/list');
    state.agents = new Map(agents.map((a) => [a.id, a]));
    renderAgents();
    if (state.view) renderAgentHeader();
    presenceChanged();
  }

  function onAgentStatus(agent) {
    const before = state.agents.get(agent.id);
    state.agents.set(agent.id, agent);
    renderAgents();
    presenceChanged();
    if (state.view?.id === agent.id) renderAgentHeader();
    // Handed over or taken back: what this member can do changes at once.
    if (state.view?.id === agent.id && before && before.canControl !== agent.canControl) steering.opened(agent);
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
        agent.pendingApprovals > 0 && !FINAL.has(agent.status)
          ? el('span', { class: 'badge waiting' }, 'waiting for approval')
          : el('span', { class: `badge ${agent.status}` }, agent.status),
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
    if (state.view) send({ type: 'agent_unsubscribe', agentId: state.view.id });
    // A long history: its newest part only (the whole of it is a download away).
    state.view = newView(id, tailStart(state.agents.get(id)));
    openView(state.view);
    $('#agent-view').hidden = false;
    $('#deck').classList.add('viewing');
    setView('readable');
    renderAgentHeader();
    renderAgents();
    send({ type: 'agent_subscribe', agentId: id, from: state.view.start });
    const agent = state.agents.get(id);
    if (agent) steering.opened(agent);
  }

  /** The agent view shows its output (readable or raw) or, for an agent on the team's repository, its changes. */
  function setView(view) {
    for (const name of ['readable', 'raw', 'changes']) $(`#view-${name}`).setAttribute('aria-pressed', view === name);
    $('#output-raw').hidden = view !== 'raw';
    $('#output-readable').hidden = view !== 'readable';
    $('#output').hidden = view === 'changes';
    followEnd();
    changes.show(view === 'changes');
  }

  function closeAgent() {
    if (state.view) send({ type: 'agent_unsubscribe', agentId: state.view.id });
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
    const approving = agent.pendingApprovals > 0 && !FINAL.has(agent.status);
    badge.textContent = approving ? 'waiting for approval' : agent.status;
    badge.className = `badge ${approving ? 'waiting' : agent.status}`;
    $('#agent-meta').textContent = [agent.type, elapsed(agent), cost(agent)].filter(Boolean).join(' · ');
    const mine = agent.canControl && !FINAL.has(agent.status);
    $('#agent-controls').hidden = !mine;
    $('#input-form').hidden = !mine;
    $('#agent-end').hidden = !(mine && agent.status === 'waiting');
    // Its branch and tree stay after it ends, until merged or discarded (its owner's call).
    $('#agent-discard').hidden = !(agent.canControl && FINAL.has(agent.status) && agent.workBranch && !agent.treeDiscarded);
    changes.opened(agent);
    steering.render();
  }

  async function control(path, body) {
    try {
      await api(`/api/agent/${state.view.id}/${path}`, { method: 'POST', body });
    } catch (error) {
      alert(error.message);
    }
  }

  /** An agent_output_gap: bytes this server cannot read (on another machine's disk only), said where they would have been. */
  function onGap(message) {
    if (state.view?.id === message.agentId && message.from === state.view.next) {
      state.view.next = message.to;
      flushLine();
      renderLine(`[output ${message.from}–${message.to} is not available on this server: ${message.reason}]`);
    }
  }

  function onEnd(message) {
    if (state.view?.id === message.agentId && message.next === state.view.next) {
      endOutput();
    }
  }

  /** After a reconnect: the open agent's output goes on from where it was. */
  function resume() {
    if (state.view && !state.view.complete) send({ type: 'agent_subscribe', agentId: state.view.id, from: state.view.next });
  }

  function wire() {
    $('#spawn-form').addEventListener('submit', (event) => {
      event.preventDefault();
      $('#spawn-error').textContent = '';
      const data = formData(event.target);
      const [kind, id] = (data.where ?? '').split(':');
      send({
        type: 'agent_spawn', task: data.task, agentType: data.agentType, repositoryUrl: data.repositoryUrl, branch: data.branch,
        baseBranch: data.baseBranch || undefined,
        vmId: kind === 'vm' ? id : undefined, boxId: kind === 'box' ? id : undefined, clientId: crypto.randomUUID(),
      });
      event.target.reset();
      toggle('#spawn-toggle', false);
    });
    $('#spawn-toggle').addEventListener('click', () => toggle('#spawn-toggle'));
    $('#agent-back').addEventListener('click', closeAgent);
    $('#agent-kill').addEventListener('click', async () => {
      try { await api(`/api/agent/${state.view.id}`, { method: 'DELETE' }); } catch (error) { alert(error.message); }
    });
    $('#agent-interrupt').addEventListener('click', () => control('interrupt'));
    $('#agent-discard').addEventListener('click', async () => {
      const agent = state.agents.get(state.view.id);
      if (!confirm(`Discard the work of this agent? Its tree is removed and its branch ${agent.workBranch} deleted.`)) return;
      await control('discard');
    });
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
    $('#output-download').addEventListener('click', downloadOutput);
    $('#view-raw').addEventListener('click', () => setView('raw'));
    $('#view-readable').addEventListener('click', () => setView('readable'));
    $('#view-changes').addEventListener('click', () => setView('changes'));
    wireFollowing();
  }

  return { load: loadAgents, onStatus: onAgentStatus, open: openAgent, onOutput, onGap, onEnd, resume, wire };
}
