namespace Covibe.Server.Features.Terminals;

internal static partial class TerminalsLog
{
    [LoggerMessage(Level = LogLevel.Warning, Message = "A message on the cluster's terminals channel could not be read: {Reason}")]
    public static partial void BadMessage(ILogger logger, string reason);
}
