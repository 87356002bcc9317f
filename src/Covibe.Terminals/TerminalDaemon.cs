using System.Collections;
using System.ComponentModel.DataAnnotations;
using System.Net.Http.Headers;
using System.Reflection;
using Covibe.Protocol;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Covibe.Web;

namespace Covibe.Terminals;

/// <summary><c>Terminald</c>: the standalone daemon's own settings (JWT_SECRET, ALLOWED_ORIGINS, ORCHESTRATOR_URL).</summary>
public sealed class TerminaldOptions : IValidatableObject
{
    public const string Section = "Terminald";

    /// <summary>The orchestrator's HS256 secret (JWT_SECRET); tokens it signs are accepted.</summary>
    public string? JwtSecret { get; set; }

    /// <summary>Browser origins that may connect (ALLOWED_ORIGINS, comma-separated).</summary>
    public string AllowedOrigins { get; set; } = "";

    /// <summary>
    /// ORCHESTRATOR_URL: when set, each connection's token is also confirmed with the orchestrator
    /// (<c>GET /api/auth/me</c> of <c>covibe serve</c>), so a logout or a removed member is refused
    /// at once rather than when the token expires.
    /// </summary>
    public string? OrchestratorUrl { get; set; }

    /// <summary>TERMINAL_SANDBOX: <c>on</c> (the default) runs shells in the sandbox (<see cref="TerminaldSandbox"/>); <c>off</c> as this daemon's user.</summary>
    public string Sandbox { get; set; } = "on";

    /// <summary>TERMINAL_SANDBOX_USER: <c>uid:gid</c> that sandboxed shells run as when the daemon runs as root.</summary>
    public string SandboxUser { get; set; } = "10001:10001";

    public bool Sandboxed => Sandbox == "on";

    /// <summary>The sandbox user as numbers (valid once validated).</summary>
    public (uint Uid, uint Gid) SandboxIds
    {
        get
        {
            var parts = SandboxUser.Split(':');
            return (uint.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture), uint.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Sandbox is not ("on" or "off"))
        {
            yield return new ValidationResult($"TERMINAL_SANDBOX must be 'on' (the default: shells in a bubblewrap sandbox) or 'off' (shells as this daemon's user), not '{Sandbox}'.", [nameof(Sandbox)]);
        }
        if (SandboxUser.Split(':') is not [var uid, var gid]
            || !uint.TryParse(uid, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var u) || u == 0
            || !uint.TryParse(gid, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var g) || g == 0)
        {
            yield return new ValidationResult($"TERMINAL_SANDBOX_USER must be uid:gid of an unprivileged user (not 0), e.g. 10001:10001, not '{SandboxUser}'.", [nameof(SandboxUser)]);
        }
        if (JwtSecret is not { Length: >= 32 })
        {
            yield return new ValidationResult("JWT_SECRET must be set to the orchestrator's secret, at least 32 characters, e.g. export JWT_SECRET=\"$(openssl rand -base64 48)\".", [nameof(JwtSecret)]);
        }
        if (!string.IsNullOrEmpty(OrchestratorUrl)
            && !(Uri.TryCreate(OrchestratorUrl, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"))
        {
            yield return new ValidationResult($"ORCHESTRATOR_URL must be an http(s) URL such as http://localhost:8000, not '{OrchestratorUrl}'.", [nameof(OrchestratorUrl)]);
        }
    }
}

/// <summary>
/// <c>covibe terminald</c>: seed 004's terminal daemon. WebSocket at <c>/</c>, <c>GET /health</c>,
/// <c>GET /sessions</c>, configured by the seed's variables.
/// </summary>
public static class TerminalDaemon
{
    public const int DefaultPort = 8787;

    public static readonly IReadOnlyDictionary<string, string> EnvironmentMap = new Dictionary<string, string>
    {
        ["JWT_SECRET"] = "Terminald:JwtSecret",
        ["ALLOWED_ORIGINS"] = "Terminald:AllowedOrigins",
        ["ORCHESTRATOR_URL"] = "Terminald:OrchestratorUrl",
        ["TERMINAL_SANDBOX"] = "Terminald:Sandbox",
        ["TERMINAL_SANDBOX_USER"] = "Terminald:SandboxUser",
        ["MAX_SESSIONS"] = "Covibe:Terminals:MaxSessions",
        ["MAX_SESSIONS_PER_USER"] = "Covibe:Terminals:MaxSessionsPerUser",
        ["SESSION_TIMEOUT"] = "Covibe:Terminals:SessionTimeoutSeconds",
        ["MAX_COMMAND_LENGTH"] = "Covibe:Terminals:MaxCommandLength",
        ["TERMINAL_ROOT"] = "Covibe:Terminals:Root",
    };

    public static readonly string Version =
        typeof(TerminalDaemon).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    /// <summary>Builds the daemon. <paramref name="environment"/> defaults to the process environment (tests pass their own).</summary>
    public static WebApplication Build(string[] args, IDictionary? environment = null, Action<WebApplicationBuilder>? configure = null)
    {
        environment ??= Environment.GetEnvironmentVariables();
        // appsettings are read once, not watched (a watch costs an inotify instance; a user has 128 by default).
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = ["--hostBuilder:reloadConfigOnChange=false", .. args] });
        var settings = new Dictionary<string, string?>
        {
            ["Logging:LogLevel:Default"] = "Information",
            ["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning",
            ["Logging:LogLevel:Microsoft.Hosting.Lifetime"] = "Warning",
        };
        foreach (var (variable, key) in EnvironmentMap)
        {
            if (environment[variable] is string { Length: > 0 } value)
            {
                settings[key] = value;
            }
        }
        if (environment["LOG_LEVEL"] is string { Length: > 0 } level)
        {
            settings["Logging:LogLevel:Default"] = LogLevelName(level);
        }
        var port = environment["PORT"] is string { Length: > 0 } p ? p : DefaultPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (!int.TryParse(port, out var portNumber) || portNumber is < 0 or > 65535)
        {
            throw new InvalidOperationException($"PORT must be a TCP port number (0-65535), not '{port}'.");
        }
        // Like the seed's Node server, listen on every interface unless HOST says otherwise: every connection needs a JWT.
        var host = environment["HOST"] is string { Length: > 0 } h ? h : "0.0.0.0";
        settings["urls"] = $"http://{host}:{portNumber}";
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Configuration.AddCommandLine(args);

        var services = builder.Services;
        services.AddSingleton(TimeProvider.System);
        services.AddProblemDetails();
        services.AddOptions<TerminaldOptions>().BindConfiguration(TerminaldOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddTerminals();
        services.AddHttpClient(nameof(OrchestratorAuthenticator));
        services.AddSingleton<ITerminalAuthenticator>(sp =>
        {
            var options = sp.GetRequiredService<IOptions<TerminaldOptions>>().Value;
            var jwt = new JwtTerminalAuthenticator(options.JwtSecret!, sp.GetRequiredService<TimeProvider>());
            return string.IsNullOrEmpty(options.OrchestratorUrl)
                ? jwt
                : new OrchestratorAuthenticator(jwt, new Uri(options.OrchestratorUrl), sp.GetRequiredService<IHttpClientFactory>());
        });
        // Shells in the sandbox unless the operator says otherwise; made (and checked) before the daemon listens.
        services.AddSingleton<ITerminalLauncher>(sp =>
        {
            var options = sp.GetRequiredService<IOptions<TerminaldOptions>>().Value;
            var local = sp.GetRequiredService<TerminalLaunch>();
            if (!options.Sandboxed)
            {
                return local;
            }
            var identity = Directory.CreateTempSubdirectory("covibe-terminald-sandbox-").FullName;
            sp.GetRequiredService<IHostApplicationLifetime>().ApplicationStopped.Register(() => Directory.Delete(identity, recursive: true));
            return new TerminaldSandbox(local, TerminaldSandbox.Create(local.Root, identity, options.SandboxIds));
        });
        configure?.Invoke(builder);

        var app = builder.Build();
        // A sandbox that cannot work here stops the daemon now, saying why, not its first shell.
        _ = app.Services.GetRequiredService<ITerminalLauncher>();
        app.UseStatusCodePages();
        app.UseWebSockets();
        app.MapGet("/health", (TerminalManager manager, TimeProvider time) => TypedResults.Json(
            new TerminalHealthResponse("running", manager.Count, (long)(time.GetUtcNow() - manager.StartedAt).TotalSeconds, Version),
            TerminalJsonContext.Default.TerminalHealthResponse));
        app.MapGet("/sessions", (TerminalManager manager) => TypedResults.Json(
            new TerminalSessionsResponse([.. manager.Sessions.Select(s => s.Info(withOwner: false))]),
            TerminalJsonContext.Default.TerminalSessionsResponse));
        var allowed = app.Services.GetRequiredService<IOptions<TerminaldOptions>>();
        app.MapTerminals("/", (origin, request) => OriginPolicy.IsAllowed(allowed.Value.AllowedOrigins, origin, request));
        return app;
    }

    /// <summary>The start-up line that says where shells run: sandboxed (as whom, with what network) or not.</summary>
    public static string WhereShellsRun(IServiceProvider services) =>
        services.GetRequiredService<ITerminalLauncher>() is TerminaldSandbox { Sandbox: var sandbox }
            ? $"Shells run in a bubblewrap sandbox: TERMINAL_ROOT and the system's programs only, as uid {sandbox.User.Uid}" +
              (sandbox.IsolatesNetwork ? ", in a network of their own (the internet, not this machine)." : ", in this machine's network.")
            : "Shells run UNSANDBOXED, as this daemon's user, with what it can reach (TERMINAL_SANDBOX=off).";

    private static string LogLevelName(string level) => level.ToLowerInvariant() switch
    {
        "trace" => "Trace",
        "debug" => "Debug",
        "info" or "information" => "Information",
        "warn" or "warning" => "Warning",
        "error" => "Error",
        "fatal" or "critical" => "Critical",
        "silent" or "none" => "None",
        _ => throw new InvalidOperationException($"LOG_LEVEL must be one of debug, info, warn, error, not '{level}'."),
    };
}

/// <summary>The JWT check, then the orchestrator's word that the login is still live.</summary>
internal sealed class OrchestratorAuthenticator(JwtTerminalAuthenticator jwt, Uri orchestrator, IHttpClientFactory clients) : ITerminalAuthenticator
{
    public async Task<TerminalAuthResult> AuthenticateAsync(string token, CancellationToken cancellationToken)
    {
        var result = await jwt.AuthenticateAsync(token, cancellationToken);
        if (result.User is null)
        {
            return result;
        }
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(orchestrator, "/api/auth/me"));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        try
        {
            using var client = clients.CreateClient(nameof(OrchestratorAuthenticator));
            client.Timeout = TimeSpan.FromSeconds(10);
            using var response = await client.SendAsync(request, cancellationToken);
            return response.IsSuccessStatusCode
                ? result
                : TerminalAuthResult.Refused("The orchestrator no longer accepts this login (signed out or removed). Log in again.");
        }
        catch (Exception e) when (e is HttpRequestException || (e is TaskCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return TerminalAuthResult.Refused("The orchestrator (ORCHESTRATOR_URL) could not be reached to confirm the login. Try again shortly.");
        }
    }
}
