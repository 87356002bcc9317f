namespace Covibe.Server.Hosting;

/// <summary>
/// A feature's metrics (its meter and instruments). Registered as one of these besides itself, so that when the server's
/// metrics have a reader every source is made at start and its gauges read from the first scrape, before anything
/// happened; without a reader, only what a feature uses anyway is made.
/// </summary>
public interface IMetricsSource;
