using System.Diagnostics.Metrics;
using Covibe.Server.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Health;

/// <summary>
/// What <c>/health</c> says, as gauges (meter <c>Covibe.Health</c>; docs/operations.md): 1 when this node reaches its
/// database, Redis (with several nodes) and the container engine (where agents or previews use one), 0 when not. The
/// database is asked at each scrape; Redis and the engine as last seen.
/// </summary>
public sealed class HealthMetrics : Hosting.IMetricsSource
{
    public const string MeterName = "Covibe.Health";

    public HealthMetrics(IMeterFactory meters, IDbContextFactory<CovibeDb> dbs, Cluster.IClusterLink cluster, Containers.ContainerEngine engine,
        IOptions<Containers.ContainersOptions> containers)
    {
        var meter = meters.Create(MeterName);
        meter.CreateObservableGauge("covibe.database.up", () => Up(dbs), "1", "Whether this node reaches its database");
        meter.CreateObservableGauge("covibe.redis.up", () => cluster.State is { } state ? [new Measurement<int>(state == "down" ? 0 : 1)] : Array.Empty<Measurement<int>>(),
            "1", "Whether this node reaches Redis (with several nodes)");
        meter.CreateObservableGauge("covibe.engine.up",
            () => (containers.Value.ForAgents || containers.Value.ForPreview) && engine.State is { } state ? [new Measurement<int>(state == "unavailable" ? 0 : 1)] : Array.Empty<Measurement<int>>(),
            "1", "Whether the container engine answered when last asked (where agents or previews use one)");
    }

    private static int Up(IDbContextFactory<CovibeDb> dbs)
    {
        try
        {
            using var db = dbs.CreateDbContext();
            return db.Database.CanConnect() ? 1 : 0;
        }
        catch (Exception e) when (e is InvalidOperationException or System.Data.Common.DbException or TimeoutException)
        {
            return 0;
        }
    }
}
