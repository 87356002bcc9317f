using System.Diagnostics;
using System.Globalization;

namespace Covibe.Server.Tests.Infrastructure;

/// <summary>
/// A private repository host over git's smart HTTP, as a forge serves one: git's own <c>git http-backend</c> behind nginx
/// (through fcgiwrap), every request asked for a password (the access token) with HTTP basic auth. On a loopback port,
/// in a temp directory; stopped with the test.
/// </summary>
public sealed class GitHttpServer : IAsyncDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "covibe-githttp-" + Guid.NewGuid().ToString("N")[..8]);
    private Process? _nginx;
    private Process? _fcgi;

    private GitHttpServer(string token) => Token = token;

    public int Port { get; } = PostgresServer.FreePort();

    /// <summary>The password the forge takes, with any user name.</summary>
    public string Token { get; }

    private string Repositories => Path.Combine(_directory, "repos");

    public static async Task<GitHttpServer> StartAsync()
    {
        File.Exists("/usr/sbin/fcgiwrap").ShouldBeTrue("/usr/sbin/fcgiwrap is missing: install Debian's fcgiwrap (./test.sh does).");
        var server = new GitHttpServer("tok-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(server.Repositories);
        var dir = server._directory;
        // nginx's {PLAIN} scheme: the test's own throwaway token, in a temp directory only the test reads.
        await File.WriteAllTextAsync(Path.Combine(dir, "htpasswd"), $"forge:{{PLAIN}}{server.Token}\nx-access-token:{{PLAIN}}{server.Token}\n");
        var socket = Path.Combine(dir, "fcgi.sock");
        server._fcgi = Process.Start(new ProcessStartInfo("/usr/sbin/fcgiwrap", ["-c", "2", "-s", $"unix:{socket}"]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        await Eventually.UntilAsync(() => Task.FromResult(File.Exists(socket)), "fcgiwrap listening", TimeSpan.FromSeconds(10));
        var conf = Path.Combine(dir, "nginx.conf");
        await File.WriteAllTextAsync(conf, $$"""
            daemon off;
            master_process off;
            worker_processes 1;
            pid {{dir}}/nginx.pid;
            error_log {{dir}}/error.log warn;
            events { worker_connections 256; }
            http {
              access_log off;
              client_body_temp_path {{dir}}/body;
              proxy_temp_path {{dir}}/proxy;
              fastcgi_temp_path {{dir}}/fastcgi;
              uwsgi_temp_path {{dir}}/uwsgi;
              scgi_temp_path {{dir}}/scgi;
              client_max_body_size 0;
              server {
                listen 127.0.0.1:{{server.Port.ToString(CultureInfo.InvariantCulture)}};
                location ~ ^/git(/.*)$ {
                  auth_basic "forge";
                  auth_basic_user_file {{dir}}/htpasswd;
                  fastcgi_pass unix:{{socket}};
                  fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;
                  fastcgi_param GIT_PROJECT_ROOT {{server.Repositories}};
                  fastcgi_param GIT_HTTP_EXPORT_ALL "";
                  fastcgi_param PATH_INFO $1;
                  fastcgi_param REMOTE_USER $remote_user;
                  fastcgi_param QUERY_STRING $query_string;
                  fastcgi_param REQUEST_METHOD $request_method;
                  fastcgi_param CONTENT_TYPE $content_type;
                  fastcgi_param CONTENT_LENGTH $content_length;
                  fastcgi_param HTTP_CONTENT_ENCODING $http_content_encoding;
                  fastcgi_param GIT_PROTOCOL $http_git_protocol;
                }
              }
            }
            """);
        server._nginx = Process.Start(new ProcessStartInfo(NginxServer.Binary, ["-p", dir, "-c", conf, "-e", Path.Combine(dir, "error.log")])
        { RedirectStandardOutput = true, RedirectStandardError = true })!;
        await PostgresServer.WaitListeningAsync(server.Port, server._nginx);
        return server;
    }

    /// <summary>A bare copy of <paramref name="source"/> served (read and push) to whoever gives the token: its address and path.</summary>
    public (string Url, string Path) Serve(GitRepo source)
    {
        var name = $"app-{Guid.NewGuid().ToString("N")[..6]}.git";
        var path = Path.Combine(Repositories, name);
        source.Git("clone", "-q", "--bare", source.Path, path);
        source.Git("--git-dir", path, "config", "http.receivepack", "true");
        return ($"http://127.0.0.1:{Port}/git/{name}", path);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in (Process?[])[_nginx, _fcgi])
        {
            if (process is { HasExited: false })
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }
            process?.Dispose();
        }
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
