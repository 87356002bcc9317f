using System.Diagnostics.Metrics;

namespace Covibe.Terminals;

/// <summary>
/// Seed 004's terminal metrics (meter <c>Covibe.Terminals</c>; labels in docs/operations.md): sessions open, sessions
/// started and refused (by the error code the client was told), and how long sessions lasted.
/// </summary>
public sealed class TerminalMetrics
{
    public const string MeterName = "Covibe.Terminals";

    private readonly Counter<long> _started;
    private readonly Histogram<double> _duration;

    public TerminalMetrics(IMeterFactory meters, Func<int> open)
    {
        var meter = meters.Create(MeterName);
        meter.CreateObservableGauge("covibe.terminals.sessions", open, "{session}", "Terminal sessions open on this process");
        _started = meter.CreateCounter<long>("covibe.terminals.started", "{session}", "Sessions asked for, by outcome: ok, or the error code the client was told");
        _duration = meter.CreateHistogram("covibe.terminals.duration", "s", "How long ended sessions lasted",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [1, 10, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600] });
    }

    public void Started(string outcome) => _started.Add(1, new KeyValuePair<string, object?>("outcome", outcome));

    public void Ended(TimeSpan lasted) => _duration.Record(lasted.TotalSeconds);
}
