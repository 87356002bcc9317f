// A WebSocket that reconnects: backoff with jitter (1 s doubling to 30 s; a minute while the
// browser says it is offline), at once when told the network is back. Used by the hub and terminals.

export function reconnectingSocket({ path, onOpen, onMessage, onDown, beforeRetry }) {
  const self = { socket: null, attempt: 0, timer: null, stopped: true };

  function connect() {
    if (self.stopped || self.socket) return;
    const socket = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`);
    self.socket = socket;
    socket.onopen = () => onOpen(socket);
    socket.onmessage = (event) => onMessage(JSON.parse(event.data));
    socket.onclose = () => {
      if (self.socket !== socket) return;
      self.socket = null;
      if (self.stopped) return;
      onDown();
      clearTimeout(self.timer);
      const delay = Math.min(30_000, 1000 * 2 ** self.attempt++) * (0.75 + Math.random() / 2);
      self.timer = setTimeout(async () => { await beforeRetry(); connect(); }, navigator.onLine ? delay : 60_000);
    };
  }

  return {
    start() { self.stopped = false; connect(); },
    stop() {
      self.stopped = true;
      clearTimeout(self.timer);
      self.socket?.close();
      self.socket = null;
    },
    // The network is back (or the page visible again): no need to wait for the backoff.
    now() {
      if (self.stopped || self.socket) return;
      self.attempt = 0;
      clearTimeout(self.timer);
      connect();
    },
    // Drop the connection (it reconnects with backoff), e.g. when the browser goes offline.
    drop() { self.socket?.close(); },
    // A successful sign-in on the socket: the next drop starts the backoff afresh.
    joined() { self.attempt = 0; },
    send(message) {
      if (self.socket?.readyState === WebSocket.OPEN) self.socket.send(JSON.stringify(message));
    },
    get connected() { return self.socket?.readyState === WebSocket.OPEN; },
  };
}
