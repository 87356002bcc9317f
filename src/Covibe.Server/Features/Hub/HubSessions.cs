using Covibe.Server.Features.Agents;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Chat;
using Covibe.Server.Http;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Hub;

/// <summary>Makes the event core of a new connection, whichever endpoint it came in on (<c>/ws</c> or <c>/socket.io/</c>).</summary>
internal sealed class HubSessions(
    TeamHub hub,
    TokenService tokens,
    AuthService auth,
    ChatService chat,
    AgentService agents,
    AgentFeeds feeds,
    AgentOutputPump pump,
    AttemptLimiter limiter,
    IOptions<HubOptions> options,
    ILogger<TeamHub> logger)
{
    public HubOptions Options => options.Value;

    public HubSession Create(HubConnection connection) =>
        new(connection, hub, tokens, auth, chat, agents, feeds, pump, limiter, options.Value, logger);
}
