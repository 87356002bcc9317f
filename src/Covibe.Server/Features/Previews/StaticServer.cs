namespace Covibe.Server.Features.Previews;

/// <summary>
/// The app of a preview that is only files (an <c>index.html</c>, a front-end's build output): a small Node web
/// server run like any other preview app (sandboxed, on <c>$PORT</c>), so the server itself never serves the
/// repository's files (its symlinks could point anywhere on this machine; in the sandbox they reach nothing).
/// </summary>
internal static class StaticServer
{
    public const string Script = """
        'use strict';
        const http = require('http'), fs = require('fs'), path = require('path');
        const root = path.resolve(process.argv[1] || '.');
        const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
          '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.svg': 'image/svg+xml', '.png': 'image/png', '.jpg': 'image/jpeg',
          '.jpeg': 'image/jpeg', '.gif': 'image/gif', '.webp': 'image/webp', '.ico': 'image/x-icon', '.txt': 'text/plain; charset=utf-8',
          '.wasm': 'application/wasm', '.woff2': 'font/woff2', '.woff': 'font/woff', '.map': 'application/json' };
        function send(res, status, text) { res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }); res.end(text); }
        http.createServer((req, res) => {
          if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'Method not allowed');
          let name;
          try { name = decodeURIComponent(new URL(req.url, 'http://x').pathname); } catch { return send(res, 400, 'Bad request'); }
          let file = path.join(root, path.normalize(name));
          if (file !== root && !file.startsWith(root + path.sep)) return send(res, 404, 'Not found');
          fs.stat(file, (err, stat) => {
            if (!err && stat.isDirectory()) { file = path.join(file, 'index.html'); }
            fs.stat(file, (err2, stat2) => {
              if (err2 || !stat2.isFile()) return send(res, 404, 'Not found');
              res.writeHead(200, { 'content-type': types[path.extname(file).toLowerCase()] || 'application/octet-stream', 'content-length': stat2.size, 'cache-control': 'no-cache' });
              if (req.method === 'HEAD') return res.end();
              fs.createReadStream(file).pipe(res);
            });
          });
        }).listen(Number(process.env.PORT), process.env.HOST || '127.0.0.1');
        """;
}
