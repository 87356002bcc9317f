using System.Diagnostics;
using System.Globalization;

namespace Covibe.Server.Tests.Infrastructure;

/// <summary>
/// A real nginx (Debian's) on a free loopback port in a temp directory, balancing <c>/</c> and the hub's WebSockets
/// over the given nodes round-robin with no sticky sessions: the load balancer of docs/scaling.md, as written there.
/// A node that refuses connections is skipped (and retried after a second).
/// </summary>
public sealed class NginxServer : IAsyncDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "covibe-nginx-" + Guid.NewGuid().ToString("N")[..8]);
    private Process? _nginx;

    public int Port { get; } = PostgresServer.FreePort();

    public Uri Url => new($"http://127.0.0.1:{Port}");

    /// <summary>What nginx logged (warnings and errors: upstreams it gave up on).</summary>
    public string ErrorLog => File.Exists(Path.Combine(_directory, "error.log")) ? File.ReadAllText(Path.Combine(_directory, "error.log")) : "";

    public static string Binary => File.Exists("/usr/sbin/nginx") ? "/usr/sbin/nginx" : "nginx";

    /// <summary>The configuration for <paramref name="upstreams"/> (host:port each) on <paramref name="listen"/>; docs/scaling.md shows the same.</summary>
    /// <paramref name="sticky"/>: each client address always to the same node (what Socket.IO's long polling needs).
    public static string Configuration(IEnumerable<string> upstreams, string listen, string directory, bool sticky = false) => $$"""
        daemon off;
        master_process off;
        worker_processes 1;
        pid {{directory}}/nginx.pid;
        error_log {{directory}}/error.log warn;
        events { worker_connections 4096; }
        http {
          access_log off;
          client_body_temp_path {{directory}}/body;
          proxy_temp_path {{directory}}/proxy;
          fastcgi_temp_path {{directory}}/fastcgi;
          uwsgi_temp_path {{directory}}/uwsgi;
          scgi_temp_path {{directory}}/scgi;
          # The hub is a WebSocket: pass the upgrade through.
          map $http_upgrade $connection_upgrade { default upgrade; '' close; }
          upstream covibe {
        {{(sticky ? "    hash $remote_addr consistent;\n" : "")}}{{string.Concat(upstreams.Select(u => $"    server {u} max_fails=0;\n"))}}  }
          server {
            listen {{listen}};
            location / {
              proxy_pass http://covibe;
              proxy_http_version 1.1;
              proxy_set_header Upgrade $http_upgrade;
              proxy_set_header Connection $connection_upgrade;
              proxy_set_header Host $host;
              proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
              proxy_set_header X-Forwarded-Proto $scheme;
              # Live output and long polls: no buffering, long reads; a node that is down is skipped.
              proxy_buffering off;
              proxy_read_timeout 1h;
              proxy_connect_timeout 2s;
              proxy_next_upstream error timeout http_502 http_503;
            }
          }
        }
        """;

    public static async Task<NginxServer> StartAsync(IEnumerable<Uri> nodes, bool sticky = false)
    {
        var nginx = new NginxServer();
        Directory.CreateDirectory(nginx._directory);
        var conf = Path.Combine(nginx._directory, "nginx.conf");
        await File.WriteAllTextAsync(conf, Configuration(nodes.Select(n => n.Authority), $"127.0.0.1:{nginx.Port.ToString(CultureInfo.InvariantCulture)}", nginx._directory, sticky));
        nginx._nginx = Process.Start(new ProcessStartInfo(Binary, ["-p", nginx._directory, "-c", conf, "-e", Path.Combine(nginx._directory, "error.log")])
        { RedirectStandardOutput = true, RedirectStandardError = true })!;
        await PostgresServer.WaitListeningAsync(nginx.Port, nginx._nginx);
        return nginx;
    }

    public async ValueTask DisposeAsync()
    {
        if (_nginx is { HasExited: false } process)
        {
            process.Kill();
            await process.WaitForExitAsync();
        }
        _nginx?.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
