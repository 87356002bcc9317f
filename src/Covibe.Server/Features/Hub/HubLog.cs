namespace Covibe.Server.Features.Hub;

// Never message contents or tokens: ids and codes only.
internal static partial class HubLog
{
    [LoggerMessage(2001, LogLevel.Information, "Connection {ConnectionId} joined team {TeamId} as user {UserId}")]
    public static partial void Joined(ILogger logger, string connectionId, string teamId, string userId);

    [LoggerMessage(2002, LogLevel.Warning, "Connection {ConnectionId} of user {UserId} fell too far behind and was dropped")]
    public static partial void SlowConsumer(ILogger logger, string connectionId, string userId);

    [LoggerMessage(2003, LogLevel.Information, "Connection {ConnectionId} of user {UserId} closed: session revoked")]
    public static partial void ClosedRevoked(ILogger logger, string connectionId, string userId);

    [LoggerMessage(2004, LogLevel.Debug, "Connection {ConnectionId} sent a bad message: {Code}")]
    public static partial void BadMessage(ILogger logger, string connectionId, string code);

    [LoggerMessage(2005, LogLevel.Warning, "WebSocket from origin {Origin} refused: not in ALLOWED_ORIGINS")]
    public static partial void OriginRefused(ILogger logger, string origin);

    [LoggerMessage(2006, LogLevel.Error, "Connection {ConnectionId} failed")]
    public static partial void Failed(ILogger logger, string connectionId, Exception exception);

    [LoggerMessage(2007, LogLevel.Warning, "Presence of team {TeamId} could not be sent")]
    public static partial void PresenceFailed(ILogger logger, string teamId, Exception exception);

    [LoggerMessage(2008, LogLevel.Warning, "Connection {ConnectionId} of user {UserId} refused: the member already has {Max} connections")]
    public static partial void TooManyConnections(ILogger logger, string connectionId, string userId, int max);
}
