using System.Diagnostics.Metrics;

namespace Covibe.Server.Features.Runners;

/// <summary>
/// Runner VMs connected to this node, by transport (meter <c>Covibe.Runners</c>; docs/operations.md). A runner silent past
/// its lease shows as its agents ending <c>lost</c> at place <c>runner</c> (<c>covibe_agents_ended_total</c>).
/// </summary>
public sealed class RunnerMetrics : Hosting.IMetricsSource
{
    public const string MeterName = "Covibe.Runners";

    public RunnerMetrics(IMeterFactory meters, RunnerHub hub)
    {
        var meter = meters.Create(MeterName);
        meter.CreateObservableGauge("covibe.runners.connected", () => Observe(hub), "{runner}", "Runner VMs connected to this node, by transport (websocket or poll)");
    }

    private static IEnumerable<Measurement<int>> Observe(RunnerHub hub) =>
        hub.ConnectedTransports().GroupBy(t => t).Select(g => new Measurement<int>(g.Count(), new KeyValuePair<string, object?>("transport", g.Key)));
}
