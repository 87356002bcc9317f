// Steering together (issue 26): an agent's permission prompts as cards to answer with one tap (the command, the file, the
// diff shown readably), who controls the open agent and the handover controls, and who did what, in place in its output.

import { $, el } from './dom.js';
import { FINAL, state } from './state.js';
import { placeActions } from './output.js';

/** `api` calls the REST API, `alert` shows a toast, `openAgent` opens an agent (from a notification). */
export function createSteering({ api, alert, openAgent }) {
  // Prompts waiting for an answer, by agent then request id; each with canAnswer as this member was told.
  const pending = new Map();
  /** The cards shown, by request id, with whether they were made for someone who may answer. */
  const cards = new Map();
  let members = null;

  const waiting = (agentId) => pending.get(agentId) ?? pending.set(agentId, new Map()).get(agentId);

  /** agent_permission_request: kept, shown on the open agent, and for whoever may answer a notification (one tap opens it). */
  function onRequest(message) {
    const request = { ...message.request, canAnswer: message.canAnswer };
    waiting(request.agentId).set(request.requestId, request);
    if (state.view?.id === request.agentId) render();
    if (message.canAnswer && (document.hidden || state.view?.id !== request.agentId)) notify(request);
  }

  function notify(request) {
    if (!('Notification' in window) || Notification.permission !== 'granted') return;
    const agent = state.agents.get(request.agentId);
    const notification = new Notification(`An agent asks to use ${request.tool}`, { body: `${summary(request)}\n${agent?.task ?? ''}`, tag: request.requestId });
    notification.onclick = () => { window.focus(); openAgent(request.agentId); };
  }

  /** agent_permission_answered: the card goes; the stream shows who answered (an agent_action). */
  function onAnswered(message) {
    const request = message.request;
    pending.get(request.agentId)?.delete(request.requestId);
    if (state.view?.id === request.agentId) render();
  }

  /** agent_control_requested: a member asks for control; the owner can grant it from here. */
  function onControlRequested(message) {
    if (!message.canGrant) return;
    const grant = async () => {
      try {
        await api(`/api/agent/${message.agentId}/control`, { method: 'POST', body: { userId: message.userId } });
        alert(`${message.userName} controls the agent now.`);
      } catch (error) { alert(error.message); }
    };
    if ('Notification' in window && Notification.permission === 'granted' && document.hidden) {
      const notification = new Notification(`${message.userName} asks to control your agent`, { body: state.agents.get(message.agentId)?.task ?? '', tag: `control-${message.agentId}` });
      notification.onclick = () => { window.focus(); openAgent(message.agentId); };
    }
    const banner = $('#control-asked');
    banner.hidden = false;
    banner.replaceChildren(
      el('span', {}, `${message.userName} asks to control this agent.`),
      el('button', { type: 'button', class: 'primary', onclick: async () => { banner.hidden = true; await grant(); } }, 'Give control'),
      el('button', { type: 'button', onclick: () => { banner.hidden = true; } }, 'Not now'));
    if (state.view?.id !== message.agentId) openAgent(message.agentId);
  }

  /** An agent was opened: its waiting prompts (from the server: some may be older than this page) and its controllers. */
  async function opened(agent) {
    $('#control-asked').hidden = true;
    try {
      const { requests } = await api(`/api/agent/${agent.id}/approvals`);
      const map = waiting(agent.id);
      map.clear();
      for (const r of requests.filter((r) => r.status === 'pending')) map.set(r.requestId, { ...r, canAnswer: agent.canControl });
      if (state.view?.id === agent.id) render();
    } catch { /* shown as the output goes on */ }
    renderControl(agent);
  }

  function summary(request) {
    const input = request.input ?? {};
    const what = input.command ?? input.file_path ?? input.notebook_path ?? input.url ?? input.pattern ?? input.path ?? input.questions?.[0]?.question;
    return what ? `${request.tool}: ${what}` : request.tool;
  }

  /**
   * The waiting prompts of the open agent, as cards at the foot of its output. A card still waiting is kept as it is (a
   * "Deny…" opened, a message half typed, the focus) while others come and go; it is made again only when who may
   * answer it changed.
   */
  function render() {
    const box = $('#approvals');
    const agent = state.agents.get(state.view?.id);
    const requests = [...(pending.get(state.view?.id)?.values() ?? [])].sort((a, b) => a.position - b.position);
    box.hidden = requests.length === 0 || !agent || FINAL.has(agent.status);
    const nodes = requests.map((r) => {
      const canAnswer = agent?.canControl ?? r.canAnswer;
      const kept = cards.get(r.requestId);
      if (kept && kept.canAnswer === canAnswer) return kept.node;
      const node = card(r, agent);
      cards.set(r.requestId, { node, canAnswer });
      return node;
    });
    for (const id of [...cards.keys()]) if (!requests.some((r) => r.requestId === id)) cards.delete(id);
    if (nodes.length !== box.children.length || nodes.some((node, i) => box.children[i] !== node)) box.replaceChildren(...nodes);
  }

  function card(request, agent) {
    const canAnswer = agent?.canControl ?? request.canAnswer;
    const answer = async (path, body, button) => {
      for (const b of button.closest('.approval').querySelectorAll('button')) b.disabled = true;
      try {
        await api(`/api/agent/${request.agentId}/${path}`, { method: 'POST', body: { requestId: request.requestId, ...body } });
        pending.get(request.agentId)?.delete(request.requestId);
        render();
      } catch (error) {
        for (const b of button.closest('.approval').querySelectorAll('button')) b.disabled = false;
        alert(error.message);
        render();
      }
    };
    const suggestion = (request.suggestions ?? []).findIndex((s) => s.type === 'addRules' && s.rules?.length);
    const rule = suggestion >= 0 ? request.suggestions[suggestion].rules[0] : null;
    const question = request.tool === 'AskUserQuestion' ? request.input?.questions?.[0] : null;
    const denyForm = el('form', { class: 'deny-form', hidden: true, onsubmit: (event) => {
      event.preventDefault();
      answer('deny', { message: event.target.elements.message.value || null }, event.submitter ?? event.target.querySelector('button'));
    } },
    el('label', { class: 'visually-hidden', for: `deny-${request.requestId}` }, 'Why, or what to do instead (the agent reads it)'),
    el('input', { id: `deny-${request.requestId}`, name: 'message', placeholder: 'Why, or what to do instead (the agent reads it)', autocomplete: 'off' }),
    el('button', { type: 'submit', class: 'danger' }, 'Deny'));
    return el('section', { class: 'approval', 'aria-label': `Permission request: ${summary(request)}`, dataset: { request: request.requestId } },
      el('p', { class: 'approval-title' }, question ? 'The agent asks you' : `The agent asks to use ${request.display_name ?? request.tool}`),
      request.description ? el('p', { class: 'muted' }, request.description) : null,
      what(request),
      question && canAnswer
        ? el('div', { class: 'button-row' }, ...(question.options ?? []).map((o) => el('button', {
          type: 'button', class: 'primary', title: o.description ?? '',
          onclick: (event) => answer('approve', { updatedInput: { ...request.input, answers: { [question.question]: o.label } } }, event.target),
        }, o.label)))
        : null,
      canAnswer
        ? el('div', { class: 'button-row approval-buttons' },
          question ? null : el('button', { type: 'button', class: 'primary', onclick: (event) => answer('approve', {}, event.target) }, 'Allow'),
          question ? null : el('button', {
            type: 'button',
            onclick: (event) => answer('approve', rule ? { suggestion } : { always: true }, event.target),
          }, rule ? `Always allow ${rule.toolName}${rule.ruleContent ? `(${rule.ruleContent})` : ''}` : `Always allow ${request.tool}`),
          el('button', { type: 'button', class: 'danger', onclick: () => { denyForm.hidden = !denyForm.hidden; if (!denyForm.hidden) denyForm.elements.message.focus(); } }, 'Deny…'))
        : el('p', { class: 'muted' }, `Waiting for ${agent?.ownerName ?? 'its owner'} (or whom they handed it to) to answer.`),
      canAnswer ? denyForm : null);
  }

  /** What the tool would do, readably: the command, the file and its content, or the edit as a diff. */
  function what(request) {
    const input = request.input ?? {};
    if (request.tool === 'Bash') return el('pre', { class: 'approval-what' }, `$ ${input.command ?? ''}`);
    if (request.tool === 'Edit' || request.tool === 'MultiEdit') {
      const edits = request.tool === 'MultiEdit' ? (input.edits ?? []) : [input];
      return el('div', {}, el('p', { class: 'approval-file' }, input.file_path ?? ''),
        ...edits.map((e) => el('pre', { class: 'approval-what diff' },
          ...(e.old_string ?? '').split('\n').map((l) => el('span', { class: 'del' }, `- ${l}\n`)),
          ...(e.new_string ?? '').split('\n').map((l) => el('span', { class: 'add' }, `+ ${l}\n`)))));
    }
    if (request.tool === 'Write') {
      const content = input.content ?? '';
      return el('div', {}, el('p', { class: 'approval-file' }, input.file_path ?? ''),
        el('pre', { class: 'approval-what diff' }, ...content.split('\n').slice(0, 40).map((l) => el('span', { class: 'add' }, `+ ${l}\n`)),
          content.split('\n').length > 40 ? `… ${content.split('\n').length - 40} more lines` : ''));
    }
    if (request.tool === 'AskUserQuestion') {
      const q = input.questions?.[0];
      return el('div', {}, el('p', { class: 'approval-question' }, q?.question ?? ''),
        ...(q?.options ?? []).map((o) => el('p', { class: 'muted' }, `${o.label}${o.description ? `: ${o.description}` : ''}`)));
    }
    return el('pre', { class: 'approval-what' }, JSON.stringify(input, null, 2));
  }

  /** Who controls the open agent, and what this member can do about it: hand it over, take it back, ask, take over. */
  async function renderControl(agent) {
    const box = $('#agent-control');
    box.replaceChildren();
    if (!agent || FINAL.has(agent.status)) return;
    let controllers;
    try { controllers = await api(`/api/agent/${agent.id}/control`); } catch { return; }
    if (state.view?.id !== agent.id) return;
    const mine = agent.ownerId === state.me.id;
    const names = controllers.controllers.map((c) => (c.userId === '*' ? 'the whole team' : c.name ?? 'a former member'));
    box.append(el('span', { class: 'muted' }, names.length ? `Controlled by ${agent.ownerName}, ${names.join(', ')}` : `Controlled by ${agent.ownerName}`));
    const act = (label, path, method = 'POST', body = undefined, cls = '') => el('button', {
      type: 'button', class: cls, onclick: async () => {
        try { await api(`/api/agent/${agent.id}/${path}`, { method, body }); renderControl(state.agents.get(agent.id)); } catch (error) { alert(error.message); }
      },
    }, label);
    if (mine) {
      members ??= (await api('/api/team')).members;
      const select = el('select', { 'aria-label': 'Hand the agent to' },
        el('option', { value: '' }, 'Hand over to…'),
        el('option', { value: '*' }, 'The whole team'),
        ...members.filter((m) => m.id !== state.me.id).map((m) => el('option', { value: m.id }, m.name)));
      select.addEventListener('change', async () => {
        if (!select.value) return;
        try {
          await api(`/api/agent/${agent.id}/control`, { method: 'POST', body: select.value === '*' ? { wholeTeam: true } : { userId: select.value } });
          renderControl(state.agents.get(agent.id));
        } catch (error) { alert(error.message); }
      });
      box.append(select, ...controllers.controllers.map((c) => act(`Take back from ${c.userId === '*' ? 'the team' : c.name}`, `control/${encodeURIComponent(c.userId)}`, 'DELETE')));
    } else if (agent.canControl) {
      if (controllers.controllers.some((c) => c.userId === state.me.id)) box.append(act('Give control back', `control/${encodeURIComponent(state.me.id)}`, 'DELETE'));
    } else {
      box.append(act('Ask for control', 'control/ask'));
      if (state.team.ownerId === state.me.id) box.append(act('Take over', 'control/take-over'));
    }
  }

  /** agent_action (live) and agent_actions (replayed from a position): lines in the open agent's output, in place. */
  function onAction(message) {
    if (state.view?.id === message.action.agentId) placeActions([message.action]);
    if (state.view?.id === message.action.agentId && ['grant', 'revoke', 'take-over'].includes(message.action.kind)) renderControl(state.agents.get(message.action.agentId));
  }

  function onActions(message) {
    if (state.view?.id === message.agentId) placeActions(message.actions);
  }

  return { onRequest, onAnswered, onControlRequested, onAction, onActions, opened, render, renderControl };
}
