namespace Covibe.Server.Features.Cluster;

internal static partial class ClusterLog
{
    [LoggerMessage(9001, LogLevel.Information, "Node {Node} joined the cluster on Redis channel {Channel}")]
    public static partial void Joined(ILogger logger, string node, string channel);

    [LoggerMessage(9002, LogLevel.Warning, "Redis is down ({Failure}: {Reason}); this node keeps serving its own clients, other nodes' events wait until it is back")]
    public static partial void RedisDown(ILogger logger, string failure, string reason);

    [LoggerMessage(9003, LogLevel.Information, "Redis is back; events flow between the nodes again")]
    public static partial void RedisBack(ILogger logger);

}
