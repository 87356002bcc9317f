namespace Covibe.Server.Features.Changes;

internal static partial class ChangesLog
{
    [LoggerMessage(19001, LogLevel.Warning, "The changes of agent {AgentId} could not be read: {Reason}")]
    public static partial void ReadFailed(ILogger logger, string agentId, string reason);

    [LoggerMessage(19002, LogLevel.Debug, "Following the changes of agent {AgentId} ({Partly})")]
    public static partial void Watching(ILogger logger, string agentId, string partly);

    [LoggerMessage(19004, LogLevel.Information, "Agent {AgentId}'s work tree and branch {Branch} discarded by {UserId}")]
    public static partial void Discarded(ILogger logger, string agentId, string branch, string userId);

    [LoggerMessage(19005, LogLevel.Warning, "Discarding agent {AgentId}'s work left a reference in the team's mirror: {Reason}")]
    public static partial void DiscardIncomplete(ILogger logger, string agentId, string reason);

    [LoggerMessage(19006, LogLevel.Information, "Agent {AgentId}'s work committed on {Branch} as {Commit} by {UserId}")]
    public static partial void Committed(ILogger logger, string agentId, string branch, string commit, string userId);

    [LoggerMessage(19007, LogLevel.Information, "Agent {AgentId}'s branch {Branch} pushed at {Commit} by {UserId}")]
    public static partial void Pushed(ILogger logger, string agentId, string branch, string commit, string userId);

    [LoggerMessage(19008, LogLevel.Warning, "The push of agent {AgentId}'s branch {Branch} was refused: {Reason}")]
    public static partial void PushRefused(ILogger logger, string agentId, string branch, string reason);

    [LoggerMessage(19009, LogLevel.Information, "Agent {AgentId}'s branch {Branch} merged into {BaseBranch} at {Commit} by {UserId}")]
    public static partial void Merged(ILogger logger, string agentId, string branch, string baseBranch, string commit, string userId);

    [LoggerMessage(19010, LogLevel.Information, "Agent {AgentId}'s branch {Branch} updated from its base at {BaseCommit} ({Conflicts} files in conflict) by {UserId}")]
    public static partial void Updated(ILogger logger, string agentId, string branch, string baseCommit, int conflicts, string userId);

    [LoggerMessage(19003, LogLevel.Warning, "Following agents' changes failed; trying again: {Reason}")]
    public static partial void WatchFailed(ILogger logger, string reason);
}
