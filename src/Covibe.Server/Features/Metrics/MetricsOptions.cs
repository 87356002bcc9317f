namespace Covibe.Server.Features.Metrics;

/// <summary>
/// <c>Covibe:Metrics</c>: where the server's metrics go. Off unless the operator names a reader: a scrape token
/// (<c>COVIBE_METRICS_TOKEN</c>) serves <c>GET /metrics</c> to Prometheus with it, and an OTLP endpoint
/// (<c>OTEL_EXPORTER_OTLP_ENDPOINT</c>, read by OpenTelemetry itself) pushes them to a collector.
/// </summary>
public sealed class MetricsOptions
{
    public const string Section = "Covibe:Metrics";

    /// <summary>Where Prometheus scrapes, with <c>Authorization: Bearer</c> and the token.</summary>
    public const string Path = "/metrics";

    /// <summary>The operator's scrape token (<c>COVIBE_METRICS_TOKEN</c>); unset, <c>/metrics</c> does not exist.</summary>
    public string? Token { get; set; }

    /// <summary>
    /// Whether gauges of running agents say which team they belong to (a label per team: for a server with a
    /// bounded number of teams; off, they are counted by place alone).
    /// </summary>
    public bool TeamLabels { get; set; }
}
