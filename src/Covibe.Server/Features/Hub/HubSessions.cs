using Covibe.Server.Features.Agents;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Chat;
using Covibe.Server.Http;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Hub;

/// <summary>
/// What the event core of a connection works with, and where a new one is made, whichever endpoint it came in on
/// (<c>/ws</c> or <c>/socket.io/</c>).
/// </summary>
internal sealed class HubSessions(
    TeamHub hub,
    TokenService tokens,
    AuthService auth,
    ChatService chat,
    AgentService agents,
    AgentFeeds feeds,
    AgentOutputPump pump,
    AttemptLimiter limiter,
    HubMetrics metrics,
    IOptions<HubOptions> options,
    ILogger<TeamHub> logger)
{
    public TeamHub Hub => hub;
    public TokenService Tokens => tokens;
    public AuthService Auth => auth;
    public ChatService Chat => chat;
    public AgentService Agents => agents;
    public AgentFeeds Feeds => feeds;
    public AgentOutputPump Pump => pump;
    public AttemptLimiter Limiter => limiter;
    public HubMetrics Metrics => metrics;
    public HubOptions Options => options.Value;
    public ILogger Logger => logger;

    public HubSession Create(HubConnection connection) => new(connection, this);
}
