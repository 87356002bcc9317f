// Seed 004's JavaScript client. The class below is the seed's, as written. The seed leaves
// createSession, generateUUID, handleOutput, handleError, outputBuffer and resolveCallbacks
// undefined; the smallest completion follows the class, outside it. The test passes the URL and
// token as arguments and expects the command's output on stdout.
const WebSocket = require('ws');
const { randomUUID: generateUUID } = require('crypto');

class TerminalClient {
  constructor(url, token) {
    this.ws = new WebSocket(url, [], {
      headers: { 'Authorization': `Bearer ${token}` }
    });
    
    this.ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      this.handleMessage(message);
    };
  }
  
  async executeCommand(command, cwd = null) {
    const sessionId = await this.createSession();
    const commandId = generateUUID();
    
    this.ws.send(JSON.stringify({
      type: 'command',
      id: commandId,
      session: sessionId,
      command,
      cwd
    }));
    
    return new Promise((resolve) => {
      this.outputBuffer[commandId] = [];
      this.resolveCallbacks[commandId] = resolve;
    });
  }
  
  handleMessage(message) {
    switch (message.type) {
      case 'output':
        this.handleOutput(message);
        break;
      case 'error':
        this.handleError(message);
        break;
    }
  }
}

// ---- completion (not in the seed) ----
class CompletedClient extends TerminalClient {
  constructor(url, token, done) {
    super(url, token);
    this.outputBuffer = {};
    this.resolveCallbacks = {};
    this.created = {};
    this.done = done;
    this.opened = new Promise((resolve, reject) => { this.ws.on('open', resolve); this.ws.on('error', reject); });
    const seedHandler = this.ws.onmessage;
    this.ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === 'session' && message.action === 'created') this.created[message.id]?.();
      seedHandler(event);
    };
  }

  async createSession() {
    await this.opened;
    const id = generateUUID();
    const created = new Promise((resolve) => { this.created[id] = resolve; });
    this.ws.send(JSON.stringify({ type: 'session', action: 'create', id }));
    await created;
    return id;
  }

  handleOutput(message) {
    const buffer = this.outputBuffer[message.id];
    if (!buffer) return;
    buffer.push(message.data);
    if (this.done(buffer.join(''))) this.resolveCallbacks[message.id](buffer.join(''));
  }

  handleError(message) {
    console.error(`${message.code}: ${message.error}`);
    process.exit(2);
  }
}

const [url, token, command, marker] = process.argv.slice(2);
const client = new CompletedClient(url, token, (output) => output.includes(marker));
client.executeCommand(command).then((output) => {
  process.stdout.write(output);
  client.ws.close();
});
