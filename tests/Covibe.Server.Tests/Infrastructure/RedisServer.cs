using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Covibe.Server.Tests.Infrastructure;

/// <summary>A real redis-server (Debian's) on a free loopback port, no persistence, in a temp directory; the tests can stop and start it.</summary>
public sealed class RedisServer : IAsyncLifetime
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "covibe-redis-" + Guid.NewGuid().ToString("N")[..8]);
    private Process? _redis;

    public int Port { get; } = PostgresServer.FreePort();

    public string Url => $"redis://127.0.0.1:{Port}";

    /// <summary>
    /// The settings of one cluster on this Redis: its URL, and a channel and key prefix of its own, so that clusters of
    /// tests running side by side share neither events nor rate-limit counters (as two deployments on one Redis must not).
    /// </summary>
    public Dictionary<string, string> ClusterSettings()
    {
        var name = "covibe-test-" + Guid.NewGuid().ToString("N")[..8];
        return new()
        {
            ["Covibe:Cluster:RedisUrl"] = Url,
            ["Covibe:Cluster:Channel"] = name + ":events",
            ["Covibe:Cluster:KeyPrefix"] = name,
        };
    }

    public async Task InitializeAsync()
    {
        File.Exists("/usr/bin/redis-server").ShouldBeTrue("redis-server is missing: install Debian's redis-server package (./test.sh does).");
        Directory.CreateDirectory(_directory);
        await StartAsync();
    }

    public async Task StartAsync()
    {
        _redis = Process.Start(new ProcessStartInfo("/usr/bin/redis-server",
            ["--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", _directory,
             "--protected-mode", "yes", "--loglevel", "warning"]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        await PostgresServer.WaitListeningAsync(Port, _redis);
    }

    /// <summary>Kills it (SIGKILL), as a crash would.</summary>
    public async Task StopAsync()
    {
        if (_redis is { HasExited: false } redis)
        {
            redis.Kill();
            await redis.WaitForExitAsync();
        }
        _redis?.Dispose();
        _redis = null;
    }

    public async Task DisposeAsync()
    {
        await StopAsync();
        Directory.Delete(_directory, recursive: true);
    }
}
