namespace Covibe.Server.Features.Runners;

internal static partial class RunnersLog
{
    [LoggerMessage(8001, LogLevel.Information, "Runner of VM {VmId} connected ({Transport})")]
    public static partial void Connected(ILogger logger, string vmId, string transport);

    [LoggerMessage(8002, LogLevel.Information, "Runner of VM {VmId} disconnected")]
    public static partial void Disconnected(ILogger logger, string vmId);

    [LoggerMessage(8003, LogLevel.Information, "Runner of VM {VmId} registered")]
    public static partial void Registered(ILogger logger, string vmId);

    [LoggerMessage(8004, LogLevel.Warning, "Runner of VM {VmId} sent a message about agent {AgentId}, which is not one of its VM's: refused")]
    public static partial void ForeignAgent(ILogger logger, string vmId, string agentId);

    [LoggerMessage(8005, LogLevel.Debug, "Runner connection of VM {VmId} ended: {Reason}")]
    public static partial void ConnectionEnded(ILogger logger, string vmId, string reason);
}
