namespace Covibe.Server.Features.Egress;

// Teams, hosts and ports only: never what went through the proxy.
internal static partial class EgressLog
{
    [LoggerMessage(17001, LogLevel.Information, "Team {TeamId}: blocked {How} connection to {Host}:{Port} by the team's egress policy")]
    public static partial void Blocked(ILogger logger, string teamId, string how, string host, int port);

    [LoggerMessage(17002, LogLevel.Information, "Team {TeamId}'s egress policy is now {Mode} (set by {UserId})")]
    public static partial void PolicySet(ILogger logger, string teamId, string mode, string userId);

    [LoggerMessage(17003, LogLevel.Information, "The egress proxy listens on port {Port} for teams with an allowlist")]
    public static partial void ProxyListening(ILogger logger, int port);

    [LoggerMessage(17004, LogLevel.Warning, "The egress proxy could not reach {Host}:{Port} for team {TeamId}: {Reason}")]
    public static partial void UpstreamFailed(ILogger logger, string host, int port, string teamId, string reason);

    [LoggerMessage(17005, LogLevel.Warning, "Refused connections of teams' code cannot be told to them: {Why}")]
    public static partial void KernelLogUnavailable(ILogger logger, string why);
}
