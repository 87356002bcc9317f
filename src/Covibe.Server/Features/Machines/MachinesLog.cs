namespace Covibe.Server.Features.Machines;

// Names, ids and states only: never environment values (CLAUDE_API_KEY) or output.
internal static partial class MachinesLog
{
    [LoggerMessage(5005, LogLevel.Warning, "An agent of team {TeamId} runs on the server's machine instead of a container: {Reason}")]
    public static partial void FellBack(ILogger logger, string teamId, string reason);

    [LoggerMessage(5010, LogLevel.Warning, "Team {TeamId} reached its {Limit} limit on this machine: {Message}")]
    public static partial void TeamLimitReached(ILogger logger, string teamId, string limit, string message);
}
