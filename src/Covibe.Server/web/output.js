// The open agent's output: the Raw view (the text as it came) and the Readable view (stream-json events as text, tool
// calls folded), both windows onto the newest output. Frames are decoded as they arrive and drawn once per animation
// frame, so a fast agent costs one layout a frame, however many frames it sends; the DOM keeps only the newest part
// (older output stays on the server: the page offers it as a download). A member who opens an agent with a long
// history reads only its tail, and sees the newest output at once.

import { $, el, atEnd, megabytes } from './dom.js';
import { state } from './state.js';

/** How much of an agent's history the page asks for when it opens it: more than both views keep. */
const TAIL_BYTES = 1024 * 1024;
const MAX_READABLE_NODES = 600;
const MAX_RAW_CHARS = 1024 * 1024;
const RAW_BLOCK_CHARS = 16 * 1024;
// What one animation frame draws at most (the rest waits for the next frame); past SKIP_CHARS waiting (a tab that was
// hidden, a slow device), the part older than what the views keep is skipped.
const FRAME_CHARS = 64 * 1024;
const SKIP_CHARS = 2 * MAX_RAW_CHARS;
// What is drawn of a backlog that was skipped: half what the Raw view keeps, so the note of what was skipped stays above it.
const KEEP_CHARS = MAX_RAW_CHARS / 2;
const MAX_TOOLS = 500;
const encoder = new TextEncoder();
const utf8Length = (text) => encoder.encode(text).length;

// Whether the output stays at its newest line: until the member scrolls up, and again once they scroll back to the end
// or press "Jump to end". Only their own scrolling (wheel, touch, keys, the scroll bar) changes it: output growing or
// trimmed under them, or a block of raw text laid out at its real height, does not. While they read, new output waits
// (the views would otherwise trim what they read from under them), and the jump button says how much.
let following = true;
let touched = -Infinity;
let pressed = false;

/** Keeps the output at its end while following; called once, when the page is wired. */
export function wireFollowing() {
  const output = $('#output');
  const touch = () => { touched = performance.now(); };
  for (const type of ['wheel', 'touchmove', 'keydown']) output.addEventListener(type, touch, { passive: true });
  output.addEventListener('pointerdown', () => { pressed = true; });
  window.addEventListener('pointerup', () => { pressed = false; touch(); });
  output.addEventListener('scroll', () => {
    if (!pressed && performance.now() - touched > 1000) return;
    if (atEnd(output)) followEnd();
    else if (following) {
      following = false;
      $('#jump-end').hidden = false;
    }
  });
  // What was drawn can grow after the frame that drew it (a raw block is laid out when it comes into view).
  const pin = new ResizeObserver(() => { if (following) output.scrollTop = output.scrollHeight; });
  pin.observe($('#output-readable'));
  pin.observe($('#output-raw'));
  $('#jump-end').addEventListener('click', followEnd);
}

/** Goes to the newest output and stays there (a view opened or switched, "Jump to end"). */
export function followEnd() {
  following = true;
  const output = $('#output');
  output.scrollTop = output.scrollHeight;
  $('#jump-end').hidden = true;
  $('#jump-end').textContent = '↓ Jump to end';
  if (state.view?.pending.length) schedule(state.view);
}

/** The view of agent `id` whose output starts at `from` (0, or where its tail starts). */
export function newView(id, from) {
  return {
    id, next: from, start: from, complete: false, line: '', decoder: new TextDecoder('utf-8'), readableCount: 0, rawChars: 0,
    rawLine: '', tools: new Map(), lineStart: from, actions: [], actionIds: new Set(),
    pending: [], pendingBytes: 0, dropped: 0, scheduled: false, skipPartialLine: from > 0,
  };
}

/** Where to start reading agent `agent`'s output: its tail when it is long. */
export function tailStart(agent) {
  return agent && agent.outputBytes > TAIL_BYTES ? agent.outputBytes - TAIL_BYTES : 0;
}

/** Clears the views for `view`, and says what is not shown of a long history. */
export function openView(view) {
  $('#output-readable').replaceChildren();
  $('#output-raw').replaceChildren();
  const earlier = $('#output-earlier');
  earlier.hidden = view.start === 0;
  earlier.textContent = view.start > 0 ? `Showing the newest output: the first ${megabytes(view.start)} are in the download.` : '';
  $('#output-download').textContent = 'Download the whole output';
  $('#output-download').disabled = false;
  followEnd();
}

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
  view.pending.push(text);
  view.pendingBytes += message.next - message.position;
  schedule(view);
}

function schedule(view) {
  if (view.scheduled) return;
  view.scheduled = true;
  // A hidden tab gets no animation frames: a timer (throttled by the browser) keeps its backlog bounded.
  const frame = requestAnimationFrame(() => { clearTimeout(timer); draw(view); });
  const timer = setTimeout(() => { cancelAnimationFrame(frame); draw(view); }, 500);
}

/**
 * Draws what arrived since the last frame (at most FRAME_CHARS of it; the rest on the next frame), unless the member
 * is reading earlier output and nothing forces it (an end or a gap is drawn after what came before it).
 */
function draw(view, force = false) {
  view.scheduled = false;
  if (state.view !== view || view.pending.length === 0) return;
  if (view.pendingBytes > SKIP_CHARS) dropOldest(view);
  if (!following && !force) {
    $('#jump-end').textContent = `↓ ${megabytes(view.pendingBytes + view.dropped)} new · Jump to end`;
    return;
  }
  const nodes = [];
  if (view.dropped) {
    // Once output was dropped, only the newest part is drawn (what waited since may be more), under the note.
    if (view.pendingBytes > KEEP_CHARS) dropOldest(view);
    nodes.push(skipped(view));
    view.lineStart = view.next - view.pendingBytes;
  }
  let text = view.pending.join('');
  view.pending = [];
  view.pendingBytes = 0;
  if (text.length > FRAME_CHARS) {
    const newline = text.indexOf('\n', FRAME_CHARS);
    if (newline >= 0 && newline + 1 < text.length) {
      const rest = text.slice(newline + 1);
      view.pending.push(rest);
      view.pendingBytes = utf8Length(rest);
      text = text.slice(0, newline + 1);
    }
  }
  appendText(view, text, nodes);
  appendReadable(nodes);
  if (following) $('#output').scrollTop = $('#output').scrollHeight;
  if (view.pending.length) schedule(view);
  else if (view.complete) lastLine(view);
}

function appendText(view, text, nodes) {
  if (view.skipPartialLine) {
    // A tail starts inside a line: what comes before the first line break is only part of one.
    const newline = text.indexOf('\n');
    view.lineStart += utf8Length(newline < 0 ? text : text.slice(0, newline + 1));
    if (newline < 0) return;
    text = text.slice(newline + 1);
    view.skipPartialLine = false;
  }
  appendRaw(view, text);
  view.line += text;
  let start = 0;
  let newline;
  while ((newline = view.line.indexOf('\n', start)) >= 0) {
    const line = view.line.slice(start, newline);
    nodes.push(...lineNodes(line));
    start = newline + 1;
    // Who did what goes in after the line it followed (counted in bytes, as positions are), only while some wait.
    if (view.actions.length) {
      view.lineStart += utf8Length(line) + 1;
      nodes.push(...dueActions(view));
    }
  }
  view.line = view.line.slice(start);
  view.lineStart = view.next - view.pendingBytes - utf8Length(view.line);
  nodes.push(...dueActions(view));
}

/** Far behind (a hidden tab, a slow device, a member reading): only the newest KEEP_CHARS will be drawn, from a line's start. */
function dropOldest(view) {
  const text = view.pending.join('');
  const newline = text.indexOf('\n', text.length - KEEP_CHARS);
  const cut = newline >= 0 ? newline + 1 : text.length - KEEP_CHARS;
  const rest = text.slice(cut);
  view.dropped += view.pendingBytes - utf8Length(rest);
  view.pending = [rest];
  view.pendingBytes = utf8Length(rest);
}

/** Output the page did not draw: said in both views, and the line state starts again at a line. */
function skipped(view) {
  const note = `${megabytes(view.dropped)} of output skipped to keep up; download the whole output to read it.`;
  view.dropped = 0;
  view.line = '';
  view.rawLine = '';
  view.skipPartialLine = false;
  const raw = $('#output-raw');
  if (raw.lastElementChild?.classList.contains('raw-line')) raw.lastElementChild.remove();
  raw.append(el('div', { class: 'raw-block trimmed' }, `… ${note}\n`));
  view.rawChars += note.length + 3;
  return el('p', { class: 'trimmed' }, note);
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
  appendReadable(dueActions(view));
}

function dueActions(view) {
  const due = [];
  while (view.actions.length && view.actions[0].position <= view.lineStart) {
    const action = view.actions.shift();
    due.push(el('p', { class: `ev-action ${action.kind}`, title: new Date(action.at).toLocaleString() }, `${action.byName ?? 'Covibe'} ${action.text}`));
  }
  return due;
}

/** Draws what is waiting at once (before a gap or the end is shown in its place), then the unfinished last line. */
export function flushLine() {
  const view = state.view;
  if (!view) return;
  while (view.pending.length) draw(view, true);
  lastLine(view);
}

/** The agent's output has ended: what waits is drawn a frame at a time as before (not all at once), then its last line. */
export function endOutput() {
  const view = state.view;
  if (!view) return;
  view.complete = true;
  if (view.pending.length) schedule(view);
  else lastLine(view);
}

/** The unfinished last line, drawn as it is. */
function lastLine(view) {
  if (view.line) {
    appendReadable(lineNodes(view.line));
    view.line = '';
  }
}

/** A line of the client's own (a gap in the output), shown in the Readable view. */
export function renderLine(line) {
  appendReadable(lineNodes(line));
}

// The Raw view is blocks of whole lines (a new block lays out alone; blocks off screen are not drawn), then the
// unfinished last line; the oldest blocks go past MAX_RAW_CHARS.
function appendRaw(view, text) {
  const raw = $('#output-raw');
  let tail = raw.lastElementChild?.classList.contains('raw-line') ? raw.lastElementChild : null;
  const all = view.rawLine + text;
  const newline = all.lastIndexOf('\n');
  if (newline >= 0) {
    let whole = all.slice(0, newline + 1);
    if (whole.length > MAX_RAW_CHARS) whole = whole.slice(whole.indexOf('\n', whole.length - MAX_RAW_CHARS) + 1);
    const blocks = [];
    for (let at = 0; at < whole.length;) {
      let end = whole.indexOf('\n', Math.min(at + RAW_BLOCK_CHARS, whole.length - 1));
      end = end < 0 ? whole.length : end + 1;
      blocks.push(el('div', { class: 'raw-block' }, whole.slice(at, end)));
      at = end;
    }
    tail?.remove();
    tail = null;
    raw.append(...blocks);
    view.rawChars += whole.length;
    view.rawLine = all.slice(newline + 1);
  } else {
    view.rawLine = all;
  }
  while (view.rawChars > MAX_RAW_CHARS && raw.firstElementChild) {
    view.rawChars -= raw.firstElementChild.textContent.length;
    raw.firstElementChild.remove();
  }
  if (view.rawLine) {
    if (!tail) {
      tail = el('div', { class: 'raw-line' });
      raw.append(tail);
    }
    tail.textContent = view.rawLine;
  } else {
    tail?.remove();
  }
}

function appendReadable(nodes) {
  const view = state.view;
  if (!nodes.length) return;
  const readable = $('#output-readable');
  // Nodes that the window would drop at once are not added at all.
  const kept = nodes.length > MAX_READABLE_NODES ? nodes.slice(nodes.length - MAX_READABLE_NODES) : nodes;
  readable.append(...kept);
  view.readableCount += kept.length;
  if (view.readableCount > MAX_READABLE_NODES) {
    while (view.readableCount > MAX_READABLE_NODES * 0.8 && readable.firstElementChild) {
      readable.firstElementChild.remove();
      view.readableCount--;
    }
    if (!readable.firstElementChild?.classList.contains('trimmed')) readable.prepend(el('p', { class: 'trimmed' }, 'Earlier output is hidden to keep this page fast; download the whole output to read it.'));
  }
}

function lineNodes(line) {
  let parsed = null;
  if (line.startsWith('{')) {
    try { parsed = JSON.parse(line); } catch { /* a half line or plain text */ }
  }
  return parsed ? eventNodes(parsed) : line.trim() ? [el('pre', { class: 'ev-output' }, line)] : [];
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
          // Only recent calls can still get their result in place.
          if (view.tools.size > MAX_TOOLS) view.tools.delete(view.tools.keys().next().value);
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
