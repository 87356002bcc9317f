using System.Collections;
using System.Text;
using Covibe.Terminals;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Covibe.Server.Tests.Infrastructure;

/// <summary>
/// A real <c>covibe terminald</c> (Kestrel on a free loopback port), configured through seed
/// 004's environment variables, with its own terminal root in a temp directory.
/// </summary>
public sealed class TestTerminald : IAsyncDisposable
{
    public const string Secret = "terminald-test-secret-0123456789-abcdefghij";

    private TestTerminald(WebApplication app, Uri url, string root)
    {
        App = app;
        Url = url;
        Root = root;
    }

    public WebApplication App { get; }

    public Uri Url { get; }

    /// <summary>TERMINAL_ROOT: sessions start here and may not leave it.</summary>
    public string Root { get; }

    public TerminalManager Manager => App.Services.GetRequiredService<TerminalManager>();

    /// <param name="args">Further settings as command-line flags, e.g. <c>--Covibe:Terminals:MessagesPerSecond=20</c>.</param>
    public static async Task<TestTerminald> StartAsync(IReadOnlyDictionary<string, string>? environment = null, params string[] args)
    {
        var root = Directory.CreateTempSubdirectory("covibe-terminald-").FullName;
        // As root, sandboxed shells run as the sandbox user: the root is theirs, as the operator is told to make it.
        Covibe.Execution.UntrustedFiles.GiveTo(root, 10001, 10001);
        var variables = new Hashtable
        {
            ["PORT"] = "0",
            ["HOST"] = "127.0.0.1",
            ["JWT_SECRET"] = Secret,
            ["TERMINAL_ROOT"] = root,
        };
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            variables[key] = value;
        }
        var app = TerminalDaemon.Build(args, variables, builder =>
        {
            if (Environment.GetEnvironmentVariable("COVIBE_TEST_LOGS") != "1")
            {
                builder.Logging.ClearProviders();
            }
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new TestTerminald(app, new Uri(address), root);
    }

    /// <summary>A JWT as an orchestrator would issue it.</summary>
    public static string Token(string user = "ann", string? team = "team-1", TimeSpan? lifetime = null, string secret = Secret, DateTime? now = null)
    {
        var issued = now ?? TimeProvider.System.GetUtcNow().UtcDateTime;
        var claims = new Dictionary<string, object> { ["sub"] = user, ["name"] = user.ToUpperInvariant() };
        if (team is not null)
        {
            claims["team"] = team;
        }
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            IssuedAt = issued,
            NotBefore = issued.AddMinutes(-5),
            Expires = issued + (lifetime ?? TimeSpan.FromMinutes(10)),
            Claims = claims,
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(secret)), SecurityAlgorithms.HmacSha256),
        });
    }

    public Task<TerminalClient> ConnectAsync(string? user = "ann", string? team = "team-1", string? origin = null) =>
        TerminalClient.ConnectAsync(Url, "/", user is null ? null : Token(user, team), origin);

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
        Directory.Delete(Root, recursive: true);
    }
}
