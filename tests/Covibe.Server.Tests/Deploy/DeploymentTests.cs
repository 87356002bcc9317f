using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Covibe.Server.Features.Previews;
using Covibe.Server.Tests.Infrastructure;
using System.Security.Cryptography.X509Certificates;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Covibe.Server.Tests;

/// <summary>
/// deploy/ as an operator uses it (issue 29, point 6): the systemd units pass systemd's own checks with their hardening, and
/// deploy/nginx/covibe.conf itself (only its names, ports, certificate paths and nodes swapped for loopback ones), with TLS
/// from a self-signed certificate, in front of two nodes on one PostgreSQL and one Redis, carries the web client, its hub
/// and an agent's live output in Chromium, the previews' wildcard origin to the nodes' preview listeners, the redirect from
/// plain HTTP, and its body limit.
/// </summary>
[Collection(RedisGroup.Name)]
public sealed partial class DeploymentTests(PostgresServer postgres, RedisServer redis, BrowserFixture browser)
    : IClassFixture<PostgresServer>, IClassFixture<BrowserFixture>, IDisposable
{
    private static readonly string Root = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", ".."));
    private readonly string _directory = StartupTests.TempDirectory();

    public void Dispose() => StartupTests.Delete(_directory);

    [Theory]
    [InlineData("covibe.service")]
    [InlineData("covibe-terminald.service")]
    [InlineData("covibe-runner.service")]
    public async Task TheSystemdUnits_PassSystemdsChecks_WithTheirHardening(string unit)
    {
        // Checked as a copy whose program exists here (verify requires ExecStart's binary).
        Directory.CreateDirectory(_directory);
        var text = await File.ReadAllTextAsync(Path.Combine(Root, "deploy", "systemd", unit));
        var copy = Path.Combine(_directory, unit);
        await File.WriteAllTextAsync(copy, text.Replace("/opt/covibe/covibe", "/bin/true", StringComparison.Ordinal));
        var (verified, verifyOutput) = await RunAsync("systemd-analyze", "verify", copy);
        verified.ShouldBe(0, verifyOutput);
        verifyOutput.Trim().ShouldBeEmpty();
        var (_, security) = await RunAsync("systemd-analyze", "security", "--offline=true", copy);
        var exposure = double.Parse(Exposure().Match(security).Groups[1].Value, CultureInfo.InvariantCulture);
        // A root service left as systemd makes it scores 9.6 ("UNSAFE"); these keep well below.
        exposure.ShouldBeLessThanOrEqualTo(7.2, security);
        if (unit != "covibe-terminald.service")
        {
            text.ShouldContain("KillMode=process"); // agents outlive a restart of the server or the runner
        }
    }

    [Fact]
    public async Task TheNginxConfiguration_WithTls_InFrontOfTwoNodes_CarriesTheWebClientItsHubAgentsAndThePreviews()
    {
        Directory.CreateDirectory(_directory);
        var (port, plainPort) = (PostgresServer.FreePort(), PostgresServer.FreePort());
        var database = await postgres.CreateDatabaseAsync();
        var settings = redis.ClusterSettings();
        foreach (var (key, value) in AgentHelpers.Settings(mockDelayMs: 200, mockSteps: 8))
        {
            settings[key] = value;
        }
        settings["Covibe:Preview:PublicUrl"] = $"https://{{team}}.preview.localhost:{port}";
        settings["Covibe:TrustedProxies"] = "127.0.0.1"; // nginx: the hub then sees https, its own origin
        settings["Covibe:AllowedHosts"] = "covibe.localhost"; // as ALLOWED_HOSTS in deploy/systemd/covibe.env.example
        await using var a = await TestServer.StartAsync(postgres: database, settings: settings);
        await using var b = await TestServer.StartAsync(postgres: database, settings: settings);
        var nodes = new[] { a, b };

        // The certificate: the server's name and the previews' wildcard, made here.
        var (certificate, privateKey) = (Path.Combine(_directory, "fullchain.pem"), Path.Combine(_directory, "privkey.pem"));
        (await RunAsync("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=covibe.localhost",
            "-addext", "subjectAltName=DNS:covibe.localhost,DNS:*.preview.localhost", "-keyout", privateKey, "-out", certificate)).ExitCode.ShouldBe(0);
        File.Copy(certificate, Path.Combine(_directory, "preview-fullchain.pem"));
        File.Copy(privateKey, Path.Combine(_directory, "preview-privkey.pem"));

        var conf = (await File.ReadAllTextAsync(Path.Combine(Root, "deploy", "nginx", "covibe.conf")))
            .Replace("preview.example.com", "preview.localhost", StringComparison.Ordinal)
            .Replace("covibe.example.com", "covibe.localhost", StringComparison.Ordinal)
            .Replace("/etc/ssl/covibe/", _directory + "/", StringComparison.Ordinal)
            .Replace("listen 443 ssl http2;", $"listen 127.0.0.1:{port} ssl http2;", StringComparison.Ordinal)
            .Replace("listen 80;", $"listen 127.0.0.1:{plainPort};", StringComparison.Ordinal)
            .Replace("    server 127.0.0.1:5180 max_fails=0;\n", string.Concat(nodes.Select(n => $"    server {n.Url.Authority} max_fails=0;\n")), StringComparison.Ordinal)
            .Replace("    server 127.0.0.1:5181 max_fails=0;\n", string.Concat(nodes.Select(n =>
                $"    server {n.App.Services.GetRequiredService<PreviewProxy>().Address!.Authority} max_fails=0;\n")), StringComparison.Ordinal);
        conf = string.Join('\n', conf.Split('\n').Where(l => !l.Contains("[::]", StringComparison.Ordinal)));
        await File.WriteAllTextAsync(Path.Combine(_directory, "covibe.conf"), conf);
        await File.WriteAllTextAsync(Path.Combine(_directory, "nginx.conf"), $$"""
            daemon off;
            master_process off;
            worker_processes 1;
            pid {{_directory}}/nginx.pid;
            error_log {{_directory}}/error.log warn;
            events { worker_connections 1024; }
            http {
              access_log off;
              client_body_temp_path {{_directory}}/body;
              proxy_temp_path {{_directory}}/proxy;
              fastcgi_temp_path {{_directory}}/fastcgi;
              uwsgi_temp_path {{_directory}}/uwsgi;
              scgi_temp_path {{_directory}}/scgi;
              include {{_directory}}/covibe.conf;
            }
            """);
        using var nginx = Process.Start(new ProcessStartInfo(NginxServer.Binary, ["-p", _directory, "-c", Path.Combine(_directory, "nginx.conf"), "-e", Path.Combine(_directory, "error.log")])
        { RedirectStandardOutput = true, RedirectStandardError = true })!;
        try
        {
            await PostgresServer.WaitListeningAsync(port, nginx);

            // Plain HTTP is sent to HTTPS.
            using (var plain = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false }))
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{plainPort}/api/auth/me") { Headers = { Host = "covibe.localhost" } };
                using var redirected = await plain.SendAsync(request);
                redirected.StatusCode.ShouldBe(HttpStatusCode.MovedPermanently);
                redirected.Headers.Location!.ToString().ShouldBe("https://covibe.localhost/api/auth/me");
            }

            // Chromium over TLS: a team, an agent watched live (the hub's WebSocket through nginx), on either node.
            var site = new Uri($"https://covibe.localhost:{port}/");
            var page = await browser.NewPageAsync(site, 1280, 900);
            await page.CreateTeamAsync("Deployed", "Sarah", "sarah.deployed@example.com");
            (await page.EvaluateAsync<string>("() => location.protocol")).ShouldBe("https:");
            await page.SpawnAsync("Build the login page", "mock-code-writer");
            await page.Locator("#output-readable").GetByText("I'll work on: Build the login page").WaitForAsync();
            await page.Locator("#agent-status.completed").WaitForAsync(new() { Timeout = 60_000 });

            // The team's preview origin goes to the nodes' preview listeners: their own answer, over TLS.
            string teamId;
            await using (var db = await a.App.Services.GetRequiredService<IDbContextFactory<Data.CovibeDb>>().CreateDbContextAsync())
            {
                teamId = (await db.Teams.SingleAsync(t => t.Name == "Deployed")).Id;
            }
            var preview = await page.Context.NewPageAsync();
            var answer = await preview.GotoAsync($"https://{teamId}.preview.localhost:{port}/");
            answer!.Status.ShouldBe(401);
            (await preview.ContentAsync()).ShouldContain("Open the preview from Covibe");

            // A body over the limit stops at nginx (reached over TLS, trusting the certificate made here and no other).
            using var ours = X509Certificate2.CreateFromPem(await File.ReadAllTextAsync(certificate));
            using var tls = new HttpClient(new SocketsHttpHandler
            {
                SslOptions = new SslClientAuthenticationOptions
                {
                    TargetHost = "covibe.localhost",
                    RemoteCertificateValidationCallback = (_, presented, _, _) => presented is not null && presented.GetCertHashString() == ours.GetCertHashString(),
                },
                ConnectCallback = async (_, ct) =>
                {
                    var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
                    await socket.ConnectAsync(IPAddress.Loopback, port, ct);
                    return new NetworkStream(socket, ownsSocket: true);
                },
            });
            using var huge = await tls.PostAsync(new Uri(site, "/api/previews/webhook"), new ByteArrayContent(new byte[27 * 1024 * 1024]));
            huge.StatusCode.ShouldBe(HttpStatusCode.RequestEntityTooLarge);
            await page.ScreenshotAsync("deployed-behind-nginx-1280");
        }
        finally
        {
            nginx.Kill();
            await nginx.WaitForExitAsync();
        }
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string program, params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(program, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var (stdout, stderr) = (process.StandardOutput.ReadToEndAsync(), process.StandardError.ReadToEndAsync());
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout + await stderr);
    }

    [GeneratedRegex(@"Overall exposure level for \S+: (\d+(?:\.\d+)?)")]
    private static partial Regex Exposure();
}
