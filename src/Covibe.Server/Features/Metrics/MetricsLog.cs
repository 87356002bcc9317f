namespace Covibe.Server.Features.Metrics;

internal static partial class MetricsLog
{
    [LoggerMessage(EventId = 9600, Level = LogLevel.Warning, Message = "A scrape of /metrics from {RemoteAddress} was refused: {Reason}")]
    public static partial void ScrapeRefused(ILogger logger, string? remoteAddress, string reason);
}
