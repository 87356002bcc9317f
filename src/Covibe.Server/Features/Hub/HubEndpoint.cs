using Covibe.Server.Features.Agents;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Chat;
using Covibe.Server.Http;
using Covibe.Protocol;
using Covibe.Server.Features.Events;
using Covibe.Server.Features.Hub.SocketIo;
using Covibe.Web;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Hub;

/// <summary>
/// <c>/ws</c>: the one real-time endpoint. Programs authenticate with an Authorization header
/// on the upgrade; browsers send <c>join_team {teamId, token}</c> as their first message
/// (never a token in the URL). Browser origins are checked against ALLOWED_ORIGINS.
/// </summary>
public static class HubEndpoint
{
    public const string Path = "/ws";

    public static IServiceCollection AddHub(this IServiceCollection services)
    {
        services.AddOptions<HubOptions>().BindConfiguration(HubOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<TeamHub>();
        services.AddSingleton<HubSessions>();
        services.AddSingleton<HubMetrics>();
        services.AddSingleton<Hosting.IMetricsSource>(sp => sp.GetRequiredService<HubMetrics>());
        services.AddSocketIo();
        // Features publish team events here; one node delivers them to its own connections.
        services.AddSingleton<ITeamEvents, LocalTeamEvents>();
        services.AddSingleton<IClusterPresence, NoClusterPresence>();
        services.AddHostedService<PresenceBroadcaster>();
        return services;
    }

    /// <summary>With <c>REDIS_URL</c>: team events and presence reach every node (the Redis halves of the two seams).</summary>
    public static IServiceCollection AddHubAcrossNodes(this IServiceCollection services)
    {
        services.AddSingleton<RedisTeamEvents>();
        services.AddSingleton<ITeamEvents>(sp => sp.GetRequiredService<RedisTeamEvents>());
        services.AddHostedService(sp => sp.GetRequiredService<RedisTeamEvents>());
        services.AddSingleton<RedisPresence>();
        services.AddSingleton<IClusterPresence>(sp => sp.GetRequiredService<RedisPresence>());
        services.AddHostedService(sp => sp.GetRequiredService<RedisPresence>());
        return services;
    }

    public static IEndpointRouteBuilder MapHub(this IEndpointRouteBuilder app)
    {
        app.Map(Path, HandleAsync).ExcludeFromDescription();
        app.MapSocketIo();
        return app;
    }

    private static async Task<IResult> HandleAsync(HttpContext context, HubSessions sessions, TokenService tokens, AuthService auth, ILogger<TeamHub> logger)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            return Problems.BadRequest("websocket-required", "WebSocket required",
                $"{Path} speaks WebSocket. Connect with a WebSocket client and send JSON messages as described in docs/protocol.md.");
        }
        var origin = context.Request.Headers.Origin.ToString();
        var hubOptions = sessions.Options;
        if (origin.Length > 0 && !hubOptions.IsOriginAllowed(origin, context.Request))
        {
            HubLog.OriginRefused(logger, origin);
            return Problems.Forbidden($"Origin '{origin}' may not open the hub. The server operator can add it to ALLOWED_ORIGINS.");
        }

        var (caller, refused) = await AuthenticateAsync(context, tokens, auth);
        if (refused is not null)
        {
            return refused;
        }

        using var accepted = await FramedWebSocket.AcceptAsync(context, TimeSpan.FromSeconds(hubOptions.KeepAliveSeconds), hubOptions.SharedCompression);
        var socket = accepted.Socket;
        var outbox = new Outbox(accepted.Sink(), new OutboxOptions(hubOptions.SendQueueCapacity, hubOptions.StreamBufferBytes));
        var connection = new HubConnection(outbox, AttemptLimiter.ClientKey(context));
        var session = sessions.Create(connection);
        await session.RunAsync(caller, receiving => ReceiveAsync(socket, connection, session, hubOptions.MaxMessageBytes, receiving), context.RequestAborted);
        return Results.Empty;
    }

    /// <summary>The reading side of <c>/ws</c>: each text message is one JSON message for the session, in order.</summary>
    private static async Task ReceiveAsync(System.Net.WebSockets.WebSocket socket, HubConnection connection, HubSession session, int maxMessageBytes, CancellationToken cancellationToken)
    {
        using var buffer = new MessageBuffer(maxMessageBytes);
        while (socket.State == System.Net.WebSockets.WebSocketState.Open)
        {
            var (count, tooLarge, binary, closed) = await buffer.ReceiveAsync(socket, cancellationToken);
            if (closed)
            {
                connection.Close(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, "bye");
                return;
            }
            if (tooLarge)
            {
                session.Refuse(HubErrorCodes.MessageTooLarge, $"Messages are limited to {maxMessageBytes} bytes.");
            }
            else if (binary)
            {
                session.Refuse(HubErrorCodes.BinaryNotSupported, "Send JSON as text frames.");
            }
            else
            {
                await session.ReceivedAsync(buffer.Message(count), cancellationToken);
            }
        }
    }

    /// <summary>The member a bearer token names (null without one), or why it is refused.</summary>
    internal static async Task<(Caller? Caller, IResult? Refused)> AuthenticateAsync(HttpContext context, TokenService tokens, AuthService auth)
    {
        if (BearerEvents.ReadBearer(context.Request.Headers.Authorization.ToString()) is not { } token)
        {
            return (null, null);
        }
        var (principal, failure) = await tokens.ValidateAsync(token);
        if (principal is null)
        {
            return (null, Problems.Unauthorized("unauthorized", failure!));
        }
        var caller = Caller.From(principal);
        if (!await auth.IsSessionActiveAsync(caller.SessionId, context.RequestAborted))
        {
            return (null, Problems.Unauthorized("unauthorized", "This login was signed out or the member was removed. Log in again with POST /api/auth/login."));
        }
        return (caller, null);
    }
}
