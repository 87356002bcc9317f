using System.Diagnostics.Metrics;

namespace Covibe.Server.Features.Previews;

/// <summary>
/// Seed 001's preview deployment success, and how long deploys take (meter <c>Covibe.Previews</c>; labels in
/// docs/operations.md): each deploy this node ran, by outcome (<c>live</c>, <c>failed</c>, <c>cancelled</c>).
/// </summary>
public sealed class PreviewMetrics : Hosting.IMetricsSource
{
    public const string MeterName = "Covibe.Previews";

    private readonly Counter<long> _deploys;
    private readonly Histogram<double> _duration;

    public PreviewMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        _deploys = meter.CreateCounter<long>("covibe.previews.deploys", "{deploy}", "Preview deploys that ended, by outcome: live, failed or cancelled");
        _duration = meter.CreateHistogram("covibe.previews.deploy.duration", "s", "From the start of a deploy (fetch, build, start, health) to live or failed",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200] });
    }

    public void Deployed(string outcome, TimeSpan took)
    {
        var label = new KeyValuePair<string, object?>("outcome", outcome);
        _deploys.Add(1, label);
        _duration.Record(took.TotalSeconds, label);
    }
}
