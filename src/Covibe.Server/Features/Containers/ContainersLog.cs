namespace Covibe.Server.Features.Containers;

// Names, ids and states only: never environment values (CLAUDE_API_KEY) or output.
internal static partial class ContainersLog
{
    [LoggerMessage(5001, LogLevel.Warning, "Container {Name} of team {TeamId} vanished from the engine without Covibe removing it")]
    public static partial void Vanished(ILogger logger, string name, string teamId);

    [LoggerMessage(5002, LogLevel.Warning, "Removed orphan container {Name} (labelled team {TeamId}), unknown to the database")]
    public static partial void OrphanRemoved(ILogger logger, string name, string teamId);

    [LoggerMessage(5003, LogLevel.Warning, "Container {Name} is unhealthy: {Failures} health checks failed in a row")]
    public static partial void Unhealthy(ILogger logger, string name, int failures);

    [LoggerMessage(5004, LogLevel.Warning, "The container engine could not be reconciled with the database")]
    public static partial void ReconcileFailed(ILogger logger, Exception exception);

    [LoggerMessage(5005, LogLevel.Warning, "The container engine stopped answering: {Problem} Agents, terminals and previews go to the fallback until it answers again")]
    public static partial void EngineDown(ILogger logger, string problem);

    [LoggerMessage(5006, LogLevel.Information, "The container engine answers again")]
    public static partial void EngineBack(ILogger logger);

    [LoggerMessage(5007, LogLevel.Information, "Each team's containers get a network of their own, walled off from other teams, this machine and {Reach} (iptables chains COVIBE-TEAMS, COVIBE-TEAMS-HOST)")]
    public static partial void TeamNetworksWalled(ILogger logger, string reach);

    [LoggerMessage(5008, LogLevel.Warning, "Each team's containers get a network of their own, but this machine's firewall could not be set: {Why}. Their containers can reach this machine's services and link-local addresses")]
    public static partial void TeamNetworksNotWalled(ILogger logger, string why);

    [LoggerMessage(5009, LogLevel.Information, "Removed network {Name}: no container of its team has used it for {Minutes} minutes")]
    public static partial void TeamNetworkRemoved(ILogger logger, string name, int minutes);
}
