'use strict';
// Baseline: a plain Node `ws` broadcaster. POST /api/agent/spawn {task} starts the fake agent;
// every WebSocket on /ws that sent join_team gets each chunk as one agent_output message.
//   node ws-server.js --port 3000 --claude PATH [--batch-ms 15] [--data DIR]
const http = require('http');
const { WebSocketServer } = require('ws');
const { options, spawnAgent } = require('./agent');

const opts = options(process.argv);
const room = new Set();
const send = (message) => {
  const frame = JSON.stringify(message);
  for (const socket of room) socket.send(frame);
};

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/health') return res.end('ok');
  if (req.method === 'POST' && req.url === '/api/agent/spawn') {
    let body = '';
    req.on('data', (c) => (body += c));
    return req.on('end', () => {
      const { task } = JSON.parse(body);
      const id = spawnAgent(opts, task, 'bench',
        (m) => send({ type: 'agent_output', ...m }),
        (m) => send({ type: 'agent_output_end', ...m }));
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ id }));
    });
  }
  res.statusCode = 404;
  res.end();
});
const wss = new WebSocketServer({ server, path: '/ws' });
wss.on('connection', (socket) => {
  socket.on('message', (data) => {
    if (JSON.parse(data).type === 'join_team') {
      room.add(socket);
      socket.send(JSON.stringify({ type: 'team_joined' }));
    }
  });
  socket.on('close', () => room.delete(socket));
});
server.listen(opts.port, '127.0.0.1');
