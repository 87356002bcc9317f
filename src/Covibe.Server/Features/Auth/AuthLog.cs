namespace Covibe.Server.Features.Auth;

// Identifiers only: never tokens, passwords or invite codes.
internal static partial class AuthLog
{
    [LoggerMessage(1001, LogLevel.Information, "Session {SessionId} started for user {UserId} in team {TeamId}")]
    public static partial void SessionStarted(ILogger logger, string userId, string teamId, string sessionId);

    [LoggerMessage(1002, LogLevel.Information, "Session {SessionId} revoked: {Reason}")]
    public static partial void SessionRevoked(ILogger logger, string sessionId, string reason);

    [LoggerMessage(1003, LogLevel.Warning, "A used refresh token of session {SessionId} was presented again; the session is revoked")]
    public static partial void RefreshReuse(ILogger logger, string sessionId);

    [LoggerMessage(1004, LogLevel.Information, "Failed login for a member of the server (reason: {Reason})")]
    public static partial void LoginFailed(ILogger logger, string reason);
}
