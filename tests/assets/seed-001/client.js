// Seed 001's client as the tests drive it: the unmodified socket.io-client from npm, told what to do one JSON line at a
// time on stdin, telling what it hears one JSON line at a time on stdout. The same lines work for client.py and the page
// driver in the browser tests (tests/Covibe.Server.Tests/Infrastructure/SocketIoClient.cs).
//   in:  {"op":"connect","url":"http://127.0.0.1:5180","options":{...}}   options as socket.io-client takes them
//        {"op":"emit","id":1,"event":"chat_message","data":{...},"ack":true}
//        {"op":"raw","packet":"42[\"x\"]"}   an Engine.IO packet written on the transport as it is
//        {"op":"disconnect"}
//   out: {"kind":"connect","transport":"polling"}  {"kind":"upgrade","transport":"websocket"}
//        {"kind":"event","event":"agent_output","data":{...}}  {"kind":"ack","id":1,"data":{...}}
//        {"kind":"connect_error","message":"...","data":{...}}  {"kind":"disconnect","reason":"..."}
// In a page, it is loaded after /socket.io/socket.io.js (window.io) and driven through window.drive; it speaks through
// window.say, which the test exposes.
const browser = typeof window !== 'undefined';
const io = browser ? window.io : require('socket.io-client').io;
const say = browser ? (line) => window.say(JSON.stringify(line)) : (line) => process.stdout.write(JSON.stringify(line) + '\n');
let socket = null;

function drive(text) {
  const command = JSON.parse(text);
  switch (command.op) {
    case 'connect': {
      socket = io(command.url, command.options || {});
      socket.on('connect', () => say({ kind: 'connect', transport: socket.io.engine.transport.name }));
      socket.io.on('open', () => socket.io.engine.on('upgrade', (t) => say({ kind: 'upgrade', transport: t.name })));
      socket.on('connect_error', (e) => say({ kind: 'connect_error', message: e.message, data: e.data ?? null }));
      socket.on('disconnect', (reason) => say({ kind: 'disconnect', reason }));
      socket.onAny((event, data) => say({ kind: 'event', event, data: data ?? null }));
      break;
    }
    case 'emit':
      if (command.ack) {
        socket.timeout(15000).emit(command.event, command.data, (err, data) =>
          say(err ? { kind: 'ack_timeout', id: command.id } : { kind: 'ack', id: command.id, data }));
      } else {
        socket.emit(command.event, command.data);
      }
      break;
    case 'raw':
      socket.io.engine.write(command.packet.slice(1));
      break;
    case 'disconnect':
      socket.disconnect();
      break;
    default:
      say({ kind: 'driver_error', message: `unknown op ${command.op}` });
  }
}

if (browser) {
  window.drive = drive;
} else {
  require('readline').createInterface({ input: process.stdin }).on('line', drive);
  process.stdin.on('end', () => process.exit(0));
}
