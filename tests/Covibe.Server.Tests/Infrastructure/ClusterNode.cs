using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Covibe.Server.Tests.Infrastructure;

/// <summary>
/// One node of a cluster as an operator runs it: a real <c>covibe serve</c> process on a loopback port with its own data
/// directory, on a shared PostgreSQL database and Redis. It can be killed (-9), stopped (SIGTERM) and started again on
/// the same port and data directory. What it prints is kept (to show when a test fails), never left to fill a pipe.
/// </summary>
public sealed class ClusterNode : IAsyncDisposable
{
    private readonly string[] _args;
    private readonly StringBuilder _output = new();
    private Process? _process;

    private ClusterNode(string name, string dataDirectory, int port, string[] args)
    {
        Name = name;
        DataDirectory = dataDirectory;
        Url = new Uri($"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}");
        _args = args;
    }

    public string Name { get; }
    public string DataDirectory { get; }
    public Uri Url { get; }

    /// <summary>A node on <paramref name="database"/>; <paramref name="settings"/> name its Redis (<see cref="RedisServer.ClusterSettings"/>) and more.</summary>
    public static async Task<ClusterNode> StartAsync(string name, string database, IReadOnlyDictionary<string, string> settings)
    {
        var data = Path.Combine(Path.GetTempPath(), "covibe-node-" + Guid.NewGuid().ToString("N")[..10]);
        // A free port can be taken by another test between the check and the node's bind: then another one.
        for (var attempt = 1; ; attempt++)
        {
            var node = Create(name, data, PostgresServer.FreePort(), database, settings);
            try
            {
                await node.StartAsync();
                return node;
            }
            catch (InvalidOperationException) when (attempt < 3 && node.Output.Contains("address already in use", StringComparison.Ordinal))
            {
                await node.DisposeAsync();
            }
        }
    }

    private static ClusterNode Create(string name, string data, int port, string database, IReadOnlyDictionary<string, string> settings)
    {
        var args = new List<string>
        {
            "serve", "--data", data, "--urls", $"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}",
            $"--Covibe:Database:ConnectionString={database}",
            $"--Covibe:Auth:JwtSecret={TestServer.JwtSecret}",
            $"--Covibe:Secrets:EncryptionKey={TestServer.EncryptionKey}",
            "--Covibe:Auth:PasswordIterations=100000",
            "--Covibe:Auth:AttemptsPerMinute=100000",
            "--Covibe:Teams:Signup=open",
            "--Logging:LogLevel:Default=Warning",
        };
        args.AddRange(settings.Select(s => $"--{s.Key}={s.Value}"));
        // Mock agents, unless the test brings its own agent types (mock agents stand in for every type).
        if (!settings.Keys.Any(k => k.StartsWith("Covibe:Agents:Types:", StringComparison.Ordinal)))
        {
            args.Add("--Covibe:Agents:UseMockAgents=true");
        }
        return new ClusterNode(name, data, port, [.. args]);
    }

    public async Task StartAsync()
    {
        var cli = new CliRunner(Path.Combine(DataDirectory, "cli"));
        _process = cli.Start(_args);
        _process.OutputDataReceived += (_, e) => Keep(e.Data);
        _process.ErrorDataReceived += (_, e) => Keep(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        try
        {
            await AgentRestartTests.WaitHealthyAsync(Url.ToString().TrimEnd('/'));
        }
        catch (Exception e)
        {
            throw new InvalidOperationException($"Node {Name} did not start. It printed:\n{Output}", e);
        }
    }

    /// <summary>SIGKILL: no shutdown code runs, as when the machine dies.</summary>
    public async Task KillAsync()
    {
        if (_process is { HasExited: false } process)
        {
            process.Kill();
            await process.WaitForExitAsync();
        }
    }

    /// <summary>SIGTERM, as systemd stops it for a restart: it shuts down in order.</summary>
    public async Task StopAsync()
    {
        if (_process is { HasExited: false } process)
        {
            using (var term = Process.Start("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)]))
            {
                await term.WaitForExitAsync();
            }
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await process.WaitForExitAsync(timeout.Token);
        }
    }

    /// <summary>What it printed (the end of it).</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    private void Keep(string? line)
    {
        lock (_output)
        {
            if (line is not null && _output.Length < 200_000)
            {
                _output.AppendLine(line);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _process?.Dispose();
        StartupTests.Delete(DataDirectory);
    }
}
