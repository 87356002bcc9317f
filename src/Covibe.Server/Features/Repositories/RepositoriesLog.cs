namespace Covibe.Server.Features.Repositories;

// Addresses, teams and users only: never a key or token.
internal static partial class RepositoriesLog
{
    [LoggerMessage(18001, LogLevel.Information, "Team {TeamId} connected its repository {Url} (branch {Branch}, {Auth}) by {UserId}")]
    public static partial void Connected(ILogger logger, string teamId, string url, string branch, string auth, string userId);

    [LoggerMessage(18002, LogLevel.Information, "Team {TeamId} made a deploy key {Fingerprint} by {UserId}")]
    public static partial void DeployKeyMade(ILogger logger, string teamId, string fingerprint, string userId);

    [LoggerMessage(18003, LogLevel.Information, "Team {TeamId} disconnected its repository by {UserId}")]
    public static partial void Disconnected(ILogger logger, string teamId, string userId);

    [LoggerMessage(18004, LogLevel.Warning, "Team {TeamId}'s repository {Url} refused the connection: {Reason}")]
    public static partial void Refused(ILogger logger, string teamId, string url, string reason);
}
