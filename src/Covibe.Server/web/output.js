// The open agent's output: each agent_output frame appended in order to the Raw view and, line by line, to the
// Readable view (stream-json events as text, tool calls folded). Both views keep the DOM small on huge outputs.

import { $, el } from './dom.js';
import { state } from './state.js';

const MAX_READABLE_NODES = 1500;
const encoder = new TextEncoder();
const utf8Length = (text) => encoder.encode(text).length;
const MAX_RAW_CHARS = 4 * 1024 * 1024;

function decode(message) {
  if (message.encoding !== 'base64') return message.data;
  const bytes = Uint8Array.from(atob(message.data), (c) => c.charCodeAt(0));
  return state.view.decoder.decode(bytes, { stream: true });
}

export function onOutput(message) {
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
    const line = view.line.slice(0, newline);
    renderLine(line);
    view.line = view.line.slice(newline + 1);
    // Who did what goes in after the line it followed (counted in bytes, as positions are), only while some wait.
    if (view.actions.length) {
      view.lineStart += utf8Length(line) + 1;
      flushActions();
    }
  }
  view.lineStart = message.next - utf8Length(view.line);
  flushActions();
  if (atEnd) output.scrollTop = output.scrollHeight;
  $('#jump-end').hidden = atEnd;
}

/** Actions (who did what) to show in the open agent's output once it has reached their position; each shown once. */
export function placeActions(actions) {
  const view = state.view;
  for (const action of actions) {
    if (view.actionIds.has(action.id)) continue;
    view.actionIds.add(action.id);
    view.actions.push(action);
  }
  view.actions.sort((a, b) => a.position - b.position || a.id - b.id);
  flushActions();
}

function flushActions() {
  const view = state.view;
  while (view.actions.length && view.actions[0].position <= view.lineStart) {
    const action = view.actions.shift();
    const readable = $('#output-readable');
    readable.append(el('p', { class: `ev-action ${action.kind}`, title: new Date(action.at).toLocaleString() }, `${action.byName ?? 'Covibe'} ${action.text}`));
    view.readableCount++;
  }
}

export function flushLine() {
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

export function renderLine(line) {
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
