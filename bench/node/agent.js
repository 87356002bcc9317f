'use strict';
// What both Node baselines share: spawn the fake agent the way Covibe does, keep its output in a
// log file (as a real server must, to replay it), and hand each chunk of stdout to `broadcast`
// with seed 001's agent_output fields plus Covibe's positions, so one load client reads all servers.
// With batchMs > 0, chunks that arrive within batchMs of the last send wait and go out together
// (the first after a quiet spell goes at once), as Covibe's reader does.
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');
const { StringDecoder } = require('string_decoder');
const { randomUUID } = require('crypto');

function options(argv) {
  const value = (name, fallback) => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : fallback; };
  return {
    port: Number(value('--port', '3000')),
    batchMs: Number(value('--batch-ms', '0')),
    data: value('--data', fs.mkdtempSync(path.join(require('os').tmpdir(), 'node-baseline-'))),
    claude: value('--claude', 'claude'),
  };
}

function spawnAgent(opts, task, owner, broadcast, end) {
  const id = randomUUID();
  const dir = path.join(opts.data, 'agents', id);
  fs.mkdirSync(dir, { recursive: true });
  const log = fs.createWriteStream(path.join(dir, 'output.log'));
  const child = spawn(opts.claude, ['-p', task, '--output-format', 'stream-json', '--verbose'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const decoder = new StringDecoder('utf8');
  let position = 0, pending = '', last = 0, timer = null;
  const flush = () => {
    timer = null;
    last = Date.now();
    if (pending.length === 0) return;
    const data = pending;
    pending = '';
    const next = position + Buffer.byteLength(data);
    broadcast({ agentId: id, owner, data, canControl: false, position, next });
    position = next;
  };
  child.stdout.on('data', (chunk) => {
    log.write(chunk);
    pending += decoder.write(chunk);
    if (opts.batchMs <= 0) return flush();
    if (timer) return;
    const wait = last + opts.batchMs - Date.now();
    if (wait <= 0) flush(); else timer = setTimeout(flush, wait);
  });
  child.on('close', (code) => {
    if (timer) clearTimeout(timer);
    pending += decoder.end();
    flush();
    log.end(() => end({ agentId: id, position, status: code === 0 ? 'completed' : 'failed' }));
  });
  return id;
}

module.exports = { options, spawnAgent };
