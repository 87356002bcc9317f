// Team chat (stored first, then broadcast: a reconnect catches up from the last id seen) and who is online.

import { $, el, atEnd } from './dom.js';
import { FINAL, state } from './state.js';

export function createChat({ api, send }) {
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
    // An activity line: something the member did (merged an agent's branch), in the same stream as what was said.
    if (m.kind === 'activity') {
      return el('li', { dataset: { id: m.id }, class: 'activity' },
        el('span', { class: 'text' }, el('strong', {}, m.userName), ` ${m.message}`, el('span', { class: 'muted' }, ` · ${time}`)));
    }
    return el('li', { dataset: { id: m.id } },
      el('span', { class: 'from' }, el('strong', {}, m.userName), ` · ${time}`),
      el('span', { class: 'text' }, m.message));
  }

  function addChat(messages) {
    const list = $('#chat');
    const wasAtEnd = atEnd(list);
    for (const m of messages) {
      if (m.id <= state.lastChatId) continue; // seen already (live and caught-up copies)
      state.lastChatId = m.id;
      list.append(chatItem(m));
    }
    if (wasAtEnd || messages.some((m) => m.userId === state.me?.id)) list.scrollTop = list.scrollHeight;
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

  function wire() {
    $('#chat-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const input = $('#chat-input');
      if (!input.value.trim()) return;
      send({ type: 'chat_message', message: input.value, clientId: crypto.randomUUID() });
      input.value = '';
    });
    $('#chat-earlier').addEventListener('click', loadEarlierChat);
  }

  return { catchUp: catchUpChat, add: addChat, renderPresence, wire };
}
