namespace Covibe.Server.Features.Previews;

// Ids, commits and states only: never secrets, request bodies or the app's output.
internal static partial class PreviewsLog
{
    [LoggerMessage(6001, LogLevel.Information, "Team {TeamId} connected its preview repository (by user {UserId})")]
    public static partial void Connected(ILogger logger, string teamId, string userId);

    [LoggerMessage(6002, LogLevel.Information, "Team {TeamId} rotated its preview webhook secret (by user {UserId})")]
    public static partial void SecretRotated(ILogger logger, string teamId, string userId);

    [LoggerMessage(6003, LogLevel.Information, "Preview deploy {DeployId} of team {TeamId}: {Status} (commit {Commit})")]
    public static partial void DeployStatus(ILogger logger, string deployId, string teamId, string status, string commit);

    [LoggerMessage(6004, LogLevel.Warning, "Preview deploy {DeployId} of team {TeamId} failed: {Error}")]
    public static partial void DeployFailed(ILogger logger, string deployId, string teamId, string error);

    [LoggerMessage(6005, LogLevel.Warning, "Webhook delivery refused for team {TeamId}: {Reason}")]
    public static partial void WebhookRefused(ILogger logger, string? teamId, string reason);

    [LoggerMessage(6006, LogLevel.Information, "Webhook delivery {DeliveryId} for team {TeamId}: {Outcome}")]
    public static partial void WebhookReceived(ILogger logger, string deliveryId, string teamId, string outcome);

    [LoggerMessage(6007, LogLevel.Warning, "Checking the preview branch of team {TeamId} failed: {Error}")]
    public static partial void CheckFailed(ILogger logger, string teamId, string error);

    [LoggerMessage(6008, LogLevel.Error, "The preview deployer of team {TeamId} failed")]
    public static partial void WorkerFailed(ILogger logger, string teamId, Exception exception);

    [LoggerMessage(6009, LogLevel.Debug, "The preview's own origin listens on {Address}")]
    public static partial void Listening(ILogger logger, string address);

    [LoggerMessage(6010, LogLevel.Warning, "The live preview of team {TeamId} stopped (deploy {DeployId}); starting it again")]
    public static partial void LiveStopped(ILogger logger, string teamId, string deployId);

    [LoggerMessage(Level = LogLevel.Information, Message = "This node ({Node}) deploys the teams' previews now")]
    public static partial void Deploying(ILogger logger, string node);
}
