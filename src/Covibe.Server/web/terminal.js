// Terminals in the Workshop tab: xterm.js on seed 004's protocol at /terminal (docs/terminals.md).
// A session lives on the server, not in the page: close the tab or lose the network, come back,
// and the page attaches again from the last byte it showed (nothing missed, nothing twice).
import { Terminal } from './vendor/xterm.mjs';
import { FitAddon } from './vendor/addon-fit.mjs';
import { reconnectingSocket } from './socket.js';
import { $ } from './dom.js';

export function createTerminals({ token, me, refreshToken, alert, api }) {
  const ui = {
    host: $('#terminal'),
    picker: $('#terminal-sessions'),
    target: $('#terminal-target'),
    status: $('#terminal-status'),
    share: $('#terminal-share'),
    close: $('#terminal-close'),
    keys: $('#terminal-keys'),
  };
  const state = {
    sessions: [],
    current: null, // { id, end, readOnly, owner }
  };
  const term = new Terminal({ convertEol: false, cursorBlink: true, scrollback: 5000, fontSize: 14, theme: { background: '#10141a' } });
  const fit = new FitAddon();
  term.loadAddon(fit);
  let opened = false;

  function open() {
    if (!opened && ui.host.offsetParent !== null) {
      term.open(ui.host);
      opened = true;
    }
    if (opened) refit();
  }

  function refit() {
    if (!opened || ui.host.offsetParent === null || state.current?.readOnly) return;
    try { fit.fit(); } catch { /* not laid out yet */ }
  }

  // Browsers cannot set headers on a WebSocket: the token goes in the first message, never in the URL.
  const socket = reconnectingSocket({
    path: '/terminal',
    onOpen: (ws) => ws.send(JSON.stringify({ type: 'auth', token: token() })),
    onMessage: (message) => onMessage(message),
    onDown: () => setStatus('Reconnecting…'),
    beforeRetry: refreshToken,
  });
  const send = (message) => socket.send(message);

  function onMessage(m) {
    switch (m.type) {
      case 'ready':
        socket.joined();
        send({ type: 'session', action: 'list' });
        // Back after a drop: continue the session we were showing from the last byte we showed.
        if (state.current) send({ type: 'session', action: 'attach', id: state.current.id, since: state.current.end });
        else setStatus('No terminal open');
        break;
      case 'sessions':
        state.sessions = m.sessions;
        renderPicker();
        break;
      case 'session':
        onSession(m);
        break;
      case 'output':
        if (m.session !== state.current?.id) return;
        term.write(m.data);
        state.current.end = m.end;
        break;
      case 'error':
        if (m.code === 'SESSION_NOT_FOUND' && state.current && m.session === state.current.id) {
          state.current = null;
          setStatus('That terminal has ended');
          send({ type: 'session', action: 'list' });
        }
        alert(m.error);
        break;
      default:
        break;
    }
  }

  function onSession(m) {
    switch (m.action) {
      case 'created':
        send({ type: 'session', action: 'list' });
        break;
      case 'attached': {
        const resumed = state.current?.id === m.id && state.current.end === m.from;
        if (!resumed) term.reset();
        state.current = { id: m.id, end: m.from, readOnly: m.read_only, owner: m.info.owner_name };
        term.options.disableStdin = m.read_only;
        // Watching: draw at the program's size (full-screen programs draw for it), not the box's.
        if (m.read_only) term.resize(m.info.cols, m.info.rows);
        setStatus(m.read_only ? `Watching ${m.info.owner_name}'s terminal (read-only)` : 'Connected');
        ui.share.hidden = m.read_only;
        ui.close.hidden = m.read_only;
        ui.keys.hidden = m.read_only;
        ui.share.setAttribute('aria-pressed', String(Boolean(m.info.shared)));
        ui.picker.value = m.id;
        if (!m.read_only) resize();
        // xterm.js draws only while on screen; on a phone the terminal sits below the chat.
        ui.host.scrollIntoView({ block: 'nearest' });
        term.focus();
        break;
      }
      case 'resized':
        if (state.current?.id === m.id && state.current.readOnly) term.resize(m.info.cols, m.info.rows);
        break;
      case 'shared':
        ui.share.setAttribute('aria-pressed', String(Boolean(m.info.shared)));
        term.focus();
        break;
      case 'detached':
        if (state.current?.id === m.id) {
          state.current = null;
          setStatus(m.info && m.info.owner !== me().id ? `${m.info.owner_name} stopped sharing this terminal` : 'Detached');
        }
        break;
      case 'exited':
      case 'closed':
        if (state.current?.id === m.id) {
          term.write(`\r\n\x1b[2m[terminal ended, exit code ${m.exit_code}]\x1b[0m\r\n`);
          state.current = null;
          ui.share.hidden = true;
          ui.close.hidden = true;
          ui.keys.hidden = true;
          setStatus('Terminal ended');
        }
        send({ type: 'session', action: 'list' });
        break;
      default:
        break;
    }
  }

  function renderPicker() {
    const options = [new Option('Choose a terminal…', '')];
    for (const s of state.sessions) {
      const mine = s.owner === me().id;
      const where = s.host ? ` on ${s.host}` : '';
      options.push(new Option(`${mine ? 'Mine' : s.owner_name}${where}: ${s.id.slice(0, 8)} · ${new Date(s.created_at).toLocaleTimeString()}`, s.id));
    }
    ui.picker.replaceChildren(...options);
    ui.picker.value = state.current?.id ?? '';
  }

  function resize() {
    refit();
    if (state.current && !state.current.readOnly) send({ type: 'session', action: 'resize', id: state.current.id, config: { cols: term.cols, rows: term.rows } });
  }

  function setStatus(text) { ui.status.textContent = text; }

  // Keys a phone's keyboard lacks (Esc, Tab, Ctrl-C, arrows); the escapes are written in the HTML
  // as JSON-style \uXXXX so the markup stays plain text.
  ui.keys.addEventListener('click', (event) => {
    const key = event.target.closest('button')?.dataset.key;
    if (!key || !state.current || state.current.readOnly) return;
    send({ type: 'input', session: state.current.id, data: JSON.parse(`"${key}"`) });
    term.focus();
  });

  term.onData((data) => {
    if (state.current && !state.current.readOnly) send({ type: 'input', session: state.current.id, data });
  });
  let resizeTimer = null;
  window.addEventListener('resize', () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(resize, 100); });

  return {
    start: () => socket.start(),
    stop: () => socket.stop(),
    reconnectNow: () => socket.now(),
    drop: () => socket.drop(),
    async shown() {
      open();
      if (state.current) resize();
      // Where a new terminal may open: this server, or one of your VMs.
      try {
        const vms = (await api('/api/vm/list')).filter((vm) => vm.ownerId === me().id);
        const chosen = ui.target.value;
        // The first choice's words are the Environment panel's (where the team's code runs).
        ui.target.replaceChildren(new Option(ui.target.options[0]?.textContent ?? 'on the server', ''), ...vms.map((vm) => new Option(`on ${vm.name} (${vm.status})`, vm.id)));
        ui.target.value = vms.some((vm) => vm.id === chosen) ? chosen : '';
      } catch { /* keep what is listed */ }
    },
    create() {
      open();
      const id = crypto.randomUUID();
      state.current = null;
      const vm = ui.target.value || undefined;
      send({ type: 'session', action: 'create', id, config: { cols: term.cols, rows: term.rows, vm } });
    },
    /** A new terminal in one of your boxes (seed 002), from the Boxes panel. */
    createIn(boxId) {
      open();
      const id = crypto.randomUUID();
      state.current = null;
      send({ type: 'session', action: 'create', id, config: { cols: term.cols, rows: term.rows, boxId } });
    },
    attach(id) {
      open();
      if (id && id !== state.current?.id) {
        if (state.current) send({ type: 'session', action: 'detach', id: state.current.id });
        state.current = null;
        send({ type: 'session', action: 'attach', id });
      }
    },
    toggleShare() {
      if (state.current) send({ type: 'session', action: 'share', id: state.current.id, shared: ui.share.getAttribute('aria-pressed') !== 'true' });
    },
    close() {
      if (state.current) send({ type: 'session', action: 'close', id: state.current.id });
    },
    // Test hook: what the screen shows, and where the page is in the session's output.
    get view() { return state.current && { id: state.current.id, end: state.current.end, readOnly: state.current.readOnly, cols: term.cols }; },
    get connected() { return socket.connected; },
  };
}
