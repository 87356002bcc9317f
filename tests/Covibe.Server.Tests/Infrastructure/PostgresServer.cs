using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Covibe.Server.Tests.Infrastructure;

/// <summary>
/// A real PostgreSQL server for the test run: <c>initdb</c> in a temp directory, started on a
/// free loopback port, stopped and deleted at the end. Each test server gets its own database.
/// </summary>
public sealed class PostgresServer : IAsyncLifetime
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "covibe-pg-" + Guid.NewGuid().ToString("N")[..8]);
    private string _bin = "";
    private int _databases;

    private readonly SemaphoreSlim _sharedLock = new(1, 1);
    private TestServer? _shared;

    public int Port { get; private set; }

    /// <summary>One Covibe server on PostgreSQL shared by the PostgreSQL suites (they isolate by team).</summary>
    public async Task<TestServer> SharedServerAsync()
    {
        await _sharedLock.WaitAsync();
        try
        {
            return _shared ??= await TestServer.StartAsync(postgres: await CreateDatabaseAsync());
        }
        finally
        {
            _sharedLock.Release();
        }
    }

    public async Task InitializeAsync()
    {
        _bin = Directory.GetDirectories("/usr/lib/postgresql").OrderDescending().Select(d => Path.Combine(d, "bin")).FirstOrDefault(d => File.Exists(Path.Combine(d, "initdb")))
            ?? throw new InvalidOperationException("PostgreSQL server binaries not found under /usr/lib/postgresql; install the 'postgresql' package (./test.sh does).");
        Directory.CreateDirectory(_directory);
        if (Environment.UserName == "root")
        {
            // initdb refuses to run as root; the cluster belongs to the postgres user.
            await RunAsync("chown", ["postgres:postgres", _directory], asPostgres: false);
        }
        var data = Path.Combine(_directory, "data");
        await RunAsync(Path.Combine(_bin, "initdb"), ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"], asPostgres: true);
        Port = FreePort();
        // Many test servers share it, each with Npgsql's pool of up to 100: PostgreSQL's default of 100 connections ran out
        // under a full run's load (docs/scaling.md says the same to operators).
        await RunAsync(Path.Combine(_bin, "pg_ctl"), ["-D", data, "-l", Path.Combine(_directory, "log"), "-w", "-t", "60", "start",
            "-o", $"-p {Port} -k {_directory} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=300"], asPostgres: true);
    }

    /// <summary>Creates an empty database and returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var name = $"covibe_{Interlocked.Increment(ref _databases)}_{Guid.NewGuid().ToString("N")[..6]}";
        await using var connection = new NpgsqlConnection(ConnectionString("postgres"));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
        await command.ExecuteNonQueryAsync();
        return ConnectionString(name);
    }

    public string ConnectionString(string database) => $"Host=127.0.0.1;Port={Port};Username=postgres;Database={database};Pooling=true";

    public async Task DisposeAsync()
    {
        if (_shared is not null)
        {
            await _shared.DisposeAsync();
        }
        _sharedLock.Dispose();
        try
        {
            await RunAsync(Path.Combine(_bin, "pg_ctl"), ["-D", Path.Combine(_directory, "data"), "-m", "immediate", "-w", "stop"], asPostgres: true);
        }
        finally
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    private static async Task RunAsync(string file, string[] args, bool asPostgres)
    {
        var root = Environment.UserName == "root";
        var info = new ProcessStartInfo(asPostgres && root ? "runuser" : file) { RedirectStandardOutput = true, RedirectStandardError = true };
        if (asPostgres && root)
        {
            foreach (var a in (string[])["-u", "postgres", "--", file])
            {
                info.ArgumentList.Add(a);
            }
        }
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} failed ({process.ExitCode}): {await stdout}{await stderr}");
        }
    }

    /// <summary>
    /// A free loopback port below the kernel's ephemeral range, so that a port a test must bind
    /// again later (a restarted server) is never handed to another test's port-0 listener meanwhile.
    /// </summary>
    /// <summary>Waits (up to 15 s) until <paramref name="port"/> on loopback accepts connections, or <paramref name="server"/> has exited.</summary>
    internal static async Task WaitListeningAsync(int port, Process server)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException) when (watch.Elapsed < TimeSpan.FromSeconds(15) && !server.HasExited)
            {
                await Task.Delay(50);
            }
        }
    }

    internal static int FreePort()
    {
        for (var attempt = 0; ; attempt++)
        {
            var port = Random.Shared.Next(20_000, 32_000);
            try
            {
                using var listener = new TcpListener(IPAddress.Loopback, port);
                listener.Start();
                return port;
            }
            catch (SocketException) when (attempt < 100)
            {
            }
        }
    }
}

[CollectionDefinition(Name)]
public sealed class PostgresGroup : ICollectionFixture<PostgresServer>
{
    public const string Name = "postgres";
}
