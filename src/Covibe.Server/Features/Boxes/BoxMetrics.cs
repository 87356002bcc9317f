using System.Diagnostics.Metrics;

namespace Covibe.Server.Features.Boxes;

/// <summary>
/// Warm pools at work (meter <c>Covibe.Boxes</c>; labels in docs/operations.md): box requests on a pool answered from
/// it (a claim) or not (a miss: the box is made while the member waits), and how long a claim took.
/// </summary>
public sealed class BoxMetrics : Hosting.IMetricsSource
{
    public const string MeterName = "Covibe.Boxes";

    private readonly Counter<long> _requests;
    private readonly Histogram<double> _claim;

    public BoxMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        _requests = meter.CreateCounter<long>("covibe.boxes.pool_requests", "{request}", "Box requests on a warm pool, by outcome: claimed (a ready box) or missed (none ready)");
        _claim = meter.CreateHistogram("covibe.boxes.claim.duration", "s", "How long claiming a ready box took",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] });
    }

    public void Claimed(double milliseconds)
    {
        _requests.Add(1, new KeyValuePair<string, object?>("outcome", "claimed"));
        _claim.Record(milliseconds / 1000);
    }

    public void Missed() => _requests.Add(1, new KeyValuePair<string, object?>("outcome", "missed"));
}
