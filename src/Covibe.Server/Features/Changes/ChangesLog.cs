namespace Covibe.Server.Features.Changes;

internal static partial class ChangesLog
{
    [LoggerMessage(19001, LogLevel.Warning, "The changes of agent {AgentId} could not be read: {Reason}")]
    public static partial void ReadFailed(ILogger logger, string agentId, string reason);

    [LoggerMessage(19002, LogLevel.Debug, "Following the changes of agent {AgentId} ({Partly})")]
    public static partial void Watching(ILogger logger, string agentId, string partly);

    [LoggerMessage(19003, LogLevel.Warning, "Following agents' changes failed; trying again: {Reason}")]
    public static partial void WatchFailed(ILogger logger, string reason);
}
