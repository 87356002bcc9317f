namespace Covibe.Server.Features.Push;

internal static partial class PushLog
{
    [LoggerMessage(8101, LogLevel.Information, "Web Push: made this server's VAPID key pair")]
    public static partial void KeysMade(ILogger logger);

    [LoggerMessage(8102, LogLevel.Information, "Web Push: a subscription of user {UserId} is gone at its push service ({Status}); removed")]
    public static partial void Gone(ILogger logger, string userId, int status);

    [LoggerMessage(8103, LogLevel.Warning, "Web Push to a subscription of user {UserId} failed ({Reason})")]
    public static partial void Failed(ILogger logger, string userId, string reason);

    [LoggerMessage(8104, LogLevel.Debug, "Web Push: sent to {Count} subscriptions")]
    public static partial void Sent(ILogger logger, int count);
}
