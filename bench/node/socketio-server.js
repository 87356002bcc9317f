'use strict';
// Baseline: seed 001's own stack, Express + Socket.IO 4.8. POST /api/agent/spawn {task} starts the
// fake agent; its chunks go to the team's room with io.to(team).emit('agent_output', ...).
//   node socketio-server.js --port 3000 --claude PATH [--batch-ms 15] [--data DIR]
const http = require('http');
const express = require('express');
const { Server } = require('socket.io');
const { options, spawnAgent } = require('./agent');

const opts = options(process.argv);
const app = express();
app.use(express.json());
const server = http.createServer(app);
const io = new Server(server, { transports: ['websocket'], maxHttpBufferSize: 1e6 });
const team = 'team-bench';

app.get('/health', (req, res) => res.send('ok'));
app.post('/api/agent/spawn', (req, res) => {
  const id = spawnAgent(opts, req.body.task, 'bench',
    (m) => io.to(team).emit('agent_output', m),
    (m) => io.to(team).emit('agent_output_end', m));
  res.json({ id });
});
io.on('connection', (socket) => {
  socket.on('join_team', () => {
    socket.join(team);
    socket.emit('team_joined', { teamId: team });
  });
});
server.listen(opts.port, '127.0.0.1');
