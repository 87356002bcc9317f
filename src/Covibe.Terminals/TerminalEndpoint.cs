using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Covibe.Terminals;

/// <summary>
/// The terminal WebSocket. Programs authenticate with an Authorization header on the upgrade
/// (seed 004); browsers, which cannot set headers, send <c>{"type":"auth","token":...}</c> first,
/// so tokens stay out of URLs. Browser origins must be allowed.
/// </summary>
public static class TerminalEndpoint
{
    public static IServiceCollection AddTerminals(this IServiceCollection services)
    {
        services.AddOptions<TerminalOptions>().BindConfiguration(TerminalOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton(sp => new TerminalLaunch(sp.GetRequiredService<IOptions<TerminalOptions>>().Value));
        services.TryAddSingleton<ITerminalLauncher>(sp => sp.GetRequiredService<TerminalLaunch>());
        services.AddSingleton<TerminalManager>();
        services.TryAddSingleton<ITerminalPeers, NoTerminalPeers>();
        services.AddHostedService(sp => sp.GetRequiredService<TerminalManager>());
        services.TryAddTimeProvider();
        return services;
    }

    /// <param name="isOriginAllowed">Decides for requests that carry an Origin header (browsers).</param>
    public static IEndpointConventionBuilder MapTerminals(this IEndpointRouteBuilder app, string pattern, Func<string, HttpRequest, bool> isOriginAllowed) =>
        app.Map(pattern, (HttpContext context, TerminalManager manager, ITerminalPeers peers, ITerminalAuthenticator authenticator, IOptions<TerminalOptions> options, TimeProvider time,
            IHostApplicationLifetime lifetime, ILogger<TerminalManager> logger) =>
            HandleAsync(context, manager, peers, authenticator, options.Value, isOriginAllowed, time, lifetime, logger)).ExcludeFromDescription();

    private static async Task<IResult> HandleAsync(
        HttpContext context,
        TerminalManager manager,
        ITerminalPeers peers,
        ITerminalAuthenticator authenticator,
        TerminalOptions options,
        Func<string, HttpRequest, bool> isOriginAllowed,
        TimeProvider time,
        IHostApplicationLifetime lifetime,
        ILogger logger)
    {
        var remote = context.Connection.RemoteIpAddress?.ToString() ?? "?";
        if (!context.WebSockets.IsWebSocketRequest)
        {
            return Problem(400, "websocket-required", "WebSocket required",
                "This endpoint speaks WebSocket (seed 004's terminal protocol). Connect with a WebSocket client; see docs/terminals.md.");
        }
        var origin = context.Request.Headers.Origin.ToString();
        if (origin.Length > 0 && !isOriginAllowed(origin, context.Request))
        {
            TerminalLog.Refused(logger, remote, "origin not allowed");
            return Problem(403, "forbidden", "Origin not allowed", $"Origin '{origin}' may not open terminals. The operator can add it to ALLOWED_ORIGINS.");
        }
        TerminalUser? user = null;
        var header = context.Request.Headers.Authorization.ToString();
        if (header.Length > 0)
        {
            var token = header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header[7..].Trim() : "";
            var result = await authenticator.AuthenticateAsync(token, context.RequestAborted);
            if (result.User is null)
            {
                TerminalLog.Refused(logger, remote, "bad token");
                context.Response.Headers.WWWAuthenticate = "Bearer";
                return Problem(401, "unauthorized", "Not signed in", result.Failure!);
            }
            user = result.User;
        }
        using var socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext
        {
            KeepAliveInterval = TimeSpan.FromSeconds(options.KeepAliveSeconds),
            KeepAliveTimeout = TimeSpan.FromSeconds(options.KeepAliveSeconds),
        });
        await using var connection = new TerminalConnection(socket, manager, peers, authenticator, options, time, logger);
        await connection.RunAsync(user, context.RequestAborted, lifetime.ApplicationStopping);
        return Results.Empty;
    }

    private static Microsoft.AspNetCore.Http.HttpResults.ProblemHttpResult Problem(int status, string type, string title, string detail) =>
        TypedResults.Problem(detail, statusCode: status, title: title, type: "https://covibe.dev/problems/" + type);

    private static void TryAddTimeProvider(this IServiceCollection services)
    {
        if (!services.Any(d => d.ServiceType == typeof(TimeProvider)))
        {
            services.AddSingleton(TimeProvider.System);
        }
    }
}
