using System.Diagnostics;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Hub;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Health;

/// <summary><c>GET /health</c> in seed 004's shape: status, sessions, uptime (s), version; plus the database in use, Redis and the container engine when used.</summary>
public static class HealthApi
{
    // Set when the routes are mapped, i.e. at start-up.
    private static readonly long StartedAt = Stopwatch.GetTimestamp();

    public static IServiceCollection AddHealth(this IServiceCollection services)
    {
        services.AddSingleton<HealthMetrics>();
        services.AddSingleton<Hosting.IMetricsSource>(sp => sp.GetRequiredService<HealthMetrics>());
        return services;
    }

    public static IEndpointRouteBuilder MapHealthApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/health", Health).WithTags("Health").AllowAnonymous();
        return app;
    }

    public static async Task<Results<Ok<HealthResponse>, JsonHttpResult<HealthResponse>>> Health(
        IDbContextFactory<CovibeDb> dbs, TeamHub hub, Cluster.IClusterLink cluster, Containers.ContainerEngine engine,
        IOptions<Containers.ContainersOptions> containers, CancellationToken cancellationToken)
    {
        // With several nodes: whether this one reaches Redis (it keeps serving its own clients either way).
        var redis = cluster.State;
        // Where agents or previews go to containers: the engine as last seen (never asked here, so /health stays quick).
        var engineState = containers.Value.ForAgents || containers.Value.ForPreview ? engine.State : null;
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var reachable = await db.Database.CanConnectAsync(cancellationToken);
        var uptime = (long)Stopwatch.GetElapsedTime(StartedAt).TotalSeconds;
        var degraded = !reachable || redis is "down" || engineState is "unavailable";
        var body = new HealthResponse(degraded ? "degraded" : "running", hub.ConnectionCount, uptime, Hosting.ServerVersion.Value, db.ProviderName(), redis, engineState);
        return reachable ? TypedResults.Ok(body) : TypedResults.Json(body, statusCode: 503);
    }
}
