using Covibe.Server.Features.Auth;
using Covibe.Server.Http;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Hub.SocketIo;

/// <summary>
/// <c>/socket.io/</c>: the hub for Socket.IO clients (seed 001's), Engine.IO v4 and Socket.IO v5. HTTP long polling
/// (<c>GET</c> receives, <c>POST</c> sends), a WebSocket from the start, or polling upgraded to a WebSocket. The events
/// and their rules are <c>/ws</c>'s (one <see cref="HubSession"/>); docs/protocol.md says how a client connects.
/// A session lives on the node that made it: behind a balancer, long polling needs sticky sessions (docs/scaling.md).
/// </summary>
public static class SocketIoEndpoint
{
    public const string Path = "/socket.io/";

    public static IServiceCollection AddSocketIo(this IServiceCollection services)
    {
        services.AddOptions<SocketIoOptions>().BindConfiguration(SocketIoOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<SocketIoClients>();
        return services;
    }

    public static IEndpointRouteBuilder MapSocketIo(this IEndpointRouteBuilder app)
    {
        app.Map(Path, HandleAsync).ExcludeFromDescription();
        // The client library, where a Socket.IO server serves it: <script src="/socket.io/socket.io.js">.
        app.MapGet(Path + "socket.io.js", ClientScript).ExcludeFromDescription();
        app.MapGet(Path + "socket.io.min.js", ClientScript).ExcludeFromDescription();
        return app;
    }

    private static IResult ClientScript(IOptions<SocketIoOptions> options)
    {
        var script = System.IO.Path.Combine(AppContext.BaseDirectory, "web", "vendor", "socket.io.min.js");
        return options.Value.Enabled && File.Exists(script)
            ? Results.File(script, "text/javascript; charset=utf-8")
            : Problems.NotFound("Script", "This server does not serve the Socket.IO client.");
    }

    private static async Task<IResult> HandleAsync(HttpContext context, SocketIoClients clients, HubSessions sessions, TokenService tokens, AuthService auth,
        IOptions<SocketIoOptions> options, ILogger<SocketIoClients> logger)
    {
        var request = context.Request;
        if (!options.Value.Enabled)
        {
            return Problems.NotFound("Endpoint", "Socket.IO is turned off on this server (Covibe:Hub:SocketIo:Enabled). Use the WebSocket hub, /ws.");
        }
        var origin = request.Headers.Origin.ToString();
        if (origin.Length > 0)
        {
            if (!sessions.Options.IsOriginAllowed(origin, request))
            {
                SocketIoLog.OriginRefused(logger, origin);
                return Problems.Forbidden($"Origin '{origin}' may not open the hub. The server operator can add it to ALLOWED_ORIGINS.");
            }
            // Another allowed origin's page polls across origins.
            context.Response.Headers.AccessControlAllowOrigin = origin;
            context.Response.Headers.AccessControlAllowCredentials = "true";
            context.Response.Headers.Vary = "Origin";
        }
        if (HttpMethods.IsOptions(request.Method))
        {
            context.Response.Headers.AccessControlAllowMethods = "GET, POST";
            context.Response.Headers.AccessControlAllowHeaders = "Authorization, Content-Type";
            return Results.NoContent();
        }
        if (request.Query["EIO"] != "4")
        {
            return Refused(5, "Unsupported protocol version", "This server speaks Engine.IO 4 (Socket.IO 3 and later clients): EIO=4.");
        }
        var transport = request.Query["transport"].ToString();
        if (transport is not ("polling" or "websocket"))
        {
            return Refused(0, "Transport unknown", "transport is 'polling' or 'websocket'.");
        }
        if (transport == "websocket" && !context.WebSockets.IsWebSocketRequest)
        {
            return Refused(3, "Bad request", "transport=websocket is a WebSocket upgrade.");
        }
        var sid = request.Query["sid"].ToString();
        if (sid.Length == 0)
        {
            if (!HttpMethods.IsGet(request.Method))
            {
                return Refused(2, "Bad handshake method", "A session starts with a GET.");
            }
            var (caller, refused) = await HubEndpoint.AuthenticateAsync(context, tokens, auth);
            return refused ?? (transport == "websocket"
                ? await clients.OpenWebSocketAsync(context, caller)
                : await clients.OpenPollingAsync(context, caller));
        }
        if (clients.Find(sid, AttemptLimiter.ClientKey(context)) is not { } client)
        {
            return Refused(1, "Session ID unknown", "This session is over or belongs to another connection: connect again.");
        }
        if (transport == "websocket")
        {
            return await clients.UpgradeAsync(context, client);
        }
        return HttpMethods.IsPost(request.Method) ? await clients.PostAsync(context, client)
            : HttpMethods.IsGet(request.Method) ? await SocketIoClients.PollAsync(context, client)
            : Refused(3, "Bad request", "Long polling is GET (receive) and POST (send).");
    }

    /// <summary>Engine.IO's refusal (its <c>code</c> and <c>message</c>, which its clients read) as ProblemDetails.</summary>
    internal static IResult Refused(int code, string message, string detail, int status = StatusCodes.Status400BadRequest) => TypedResults.Problem(
        detail: detail, statusCode: status, title: message, type: Problems.TypeBase + "socket-io",
        extensions: new Dictionary<string, object?> { ["code"] = code, ["message"] = message });
}
