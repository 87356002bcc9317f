using System.Net.Http.Headers;
using System.Net.Http.Json;
using Covibe.Protocol;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Covibe.Server.Tests.Infrastructure;

/// <summary>
/// A real <c>covibe serve</c> (Kestrel on a free loopback port) with its own data directory,
/// on SQLite or on a database of the test PostgreSQL server.
/// </summary>
public sealed class TestServer : IAsyncDisposable
{
    public const string Password = "correct horse battery";
    public const string JwtSecret = "test-secret-test-secret-test-secret-0123456789";
    public const string EncryptionKey = "test-encryption-key-0123456789-abcdefghijklmnop";

    private int _emails;

    private bool _ownsDataDirectory;

    private TestServer(WebApplication app, string dataDirectory, Uri url)
    {
        App = app;
        DataDirectory = dataDirectory;
        Url = url;
    }

    public WebApplication App { get; }
    public string DataDirectory { get; }
    public Uri Url { get; }

    public static async Task<TestServer> StartAsync(
        string? postgres = null,
        IReadOnlyDictionary<string, string>? settings = null,
        TimeProvider? clock = null,
        string? dataDirectory = null,
        LogSink? logs = null)
    {
        var owned = dataDirectory is null;
        dataDirectory ??= Path.Combine(Path.GetTempPath(), "covibe-test-" + Guid.NewGuid().ToString("N")[..10]);
        var args = new List<string>
        {
            "--urls=http://127.0.0.1:0",
            "--environment=Production",
            $"--Covibe:DataDirectory={dataDirectory}",
            $"--Covibe:Auth:JwtSecret={JwtSecret}",
            $"--Covibe:Secrets:EncryptionKey={EncryptionKey}",
            "--Covibe:Auth:PasswordIterations=100000",
        };
        // Shared servers serve many tests from one address; rate-limit tests set their own limit.
        if (settings?.ContainsKey("Covibe:Auth:AttemptsPerMinute") != true)
        {
            args.Add("--Covibe:Auth:AttemptsPerMinute=100000");
        }
        // Most tests create teams freely; the signup tests set their own policy.
        if (settings?.ContainsKey("Covibe:Egress:ProxyPort") != true)
        {
            args.Add("--Covibe:Egress:ProxyPort=0"); // servers run side by side here: each its own proxy port
        }
        if (settings?.ContainsKey("Covibe:Teams:Signup") != true && settings?.ContainsKey("Covibe:Teams:AllowTeamCreation") != true)
        {
            args.Add("--Covibe:Teams:Signup=open");
        }
        if (postgres is not null)
        {
            args.Add($"--Covibe:Database:ConnectionString={postgres}");
        }
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            args.Add($"--{key}={value}");
        }
        var app = CovibeServer.Build([.. args], builder =>
        {
            // Server logs are noise in a passing run; COVIBE_TEST_LOGS=1 shows them when debugging.
            if (Environment.GetEnvironmentVariable("COVIBE_TEST_LOGS") != "1")
            {
                builder.Logging.ClearProviders();
            }
            if (logs is not null)
            {
                builder.Logging.AddProvider(logs);
                builder.Logging.SetMinimumLevel(LogLevel.Trace);
            }
            if (clock is not null)
            {
                builder.Services.AddSingleton(clock);
            }
        });
        try
        {
            await CovibeServer.StartAsync(app, CancellationToken.None);
        }
        catch
        {
            // A start that fails (as some tests intend) leaves nothing behind.
            await app.DisposeAsync();
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            if (owned && Directory.Exists(dataDirectory))
            {
                Directory.Delete(dataDirectory, recursive: true);
            }
            throw;
        }
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new TestServer(app, dataDirectory, new Uri(address)) { _ownsDataDirectory = owned };
    }

    public HttpClient Client(string? accessToken = null)
    {
        var client = new HttpClient { BaseAddress = Url, Timeout = TimeSpan.FromSeconds(30) };
        if (accessToken is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
        }
        return client;
    }

    public string NewEmail(string name) => $"{name.ToLowerInvariant()}{Interlocked.Increment(ref _emails)}@example.com";

    public async Task<CreateTeamResponse> CreateTeamAsync(string team = "Acme", string user = "Sarah")
    {
        using var client = Client();
        using var reply = await client.PostAsJsonAsync("/api/team/create", new CreateTeamRequest(team, user, NewEmail(user), Password));
        reply.StatusCode.ShouldBe(System.Net.HttpStatusCode.Created, await reply.Content.ReadAsStringAsync());
        return (await reply.Content.ReadFromJsonAsync<CreateTeamResponse>())!;
    }

    public async Task<AuthResponse> JoinAsync(string inviteCode, string name, string? email = null)
    {
        using var client = Client();
        using var reply = await client.PostAsJsonAsync("/api/auth/login", new LoginRequest(email ?? NewEmail(name), Password, inviteCode, name));
        reply.StatusCode.ShouldBe(System.Net.HttpStatusCode.OK, await reply.Content.ReadAsStringAsync());
        return (await reply.Content.ReadFromJsonAsync<AuthResponse>())!;
    }

    /// <summary>A team with an owner and one more member.</summary>
    public async Task<(CreateTeamResponse Owner, AuthResponse Member)> CreateTeamWithMemberAsync(string team = "Acme")
    {
        var owner = await CreateTeamAsync(team, "Sarah");
        var member = await JoinAsync(owner.Invite.InviteCode, "Miguel");
        return (owner, member);
    }

    public Task<HubClient> ConnectAsync(string? bearer = null, string? origin = null, bool read = true, bool deflate = false) =>
        HubClient.ConnectAsync(Url, bearer, origin, read, deflate: deflate);

    private bool _disposed;

    /// <summary>Stops the server (again: nothing; a test may stop a node half-way and still dispose it at the end).</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        await App.StopAsync();
        await App.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        if (_ownsDataDirectory && Directory.Exists(DataDirectory))
        {
            // Agents outlive their server by design; a test's must not outlive the test.
            KillAgentsOf(DataDirectory);
            StartupTests.Delete(DataDirectory);
        }
    }

    /// <summary>Kills (with their sessions) the processes started for agents in <paramref name="dataDirectory"/>.</summary>
    public static void KillAgentsOf(string dataDirectory)
    {
        foreach (var pid in ProcessesMentioning(Path.Combine(dataDirectory, "agents")).Where(p => p != Environment.ProcessId))
        {
            foreach (var member in Covibe.Execution.ProcFs.SessionMembers(pid).Append(pid))
            {
                try
                {
                    System.Diagnostics.Process.GetProcessById(member).Kill(entireProcessTree: true);
                }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
                {
                    // Gone already.
                }
            }
        }
    }

    /// <summary>The processes of this machine whose command line mentions <paramref name="text"/>.</summary>
    public static List<int> ProcessesMentioning(string text)
    {
        var marker = System.Text.Encoding.UTF8.GetBytes(text);
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
            {
                continue;
            }
            try
            {
                if (File.ReadAllBytes(Path.Combine(dir, "cmdline")).AsSpan().IndexOf(marker) >= 0)
                {
                    found.Add(pid);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The process ended while we looked.
            }
        }
        return found;
    }
}
