using Covibe.Server.Features.Containers;
using System.Collections.Concurrent;
using Covibe.Execution;
using Covibe.Server.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Covibe.Execution.Containers;

namespace Covibe.Server.Features.Containers;

/// <summary>What one pass found: containers that vanished, and orphans it removed.</summary>
public sealed record ReconcileReport(IReadOnlyList<string> Vanished, IReadOnlyList<string> OrphansRemoved);

/// <summary>
/// Keeps <c>container_environments</c> true: at start-up and every health-check interval it
/// compares the engine's Covibe containers with the database. A row whose container is gone is
/// marked <c>missing</c>; a labelled container the database does not know (a crash between create
/// and record, or a database restored from backup) is removed and reported; running ones get seed
/// 003's health check from here (three failures in a row: unhealthy).
/// </summary>
public sealed class ContainerReconciler(
    IDbContextFactory<CovibeDb> dbs,
    ContainerEngine engine,
    ContainerJournal journal,
    IOptions<ContainersOptions> options,
    TimeProvider time,
    ILogger<ContainerReconciler> logger) : BackgroundService
{
    private readonly ConcurrentDictionary<string, int> _failures = new();
    private readonly SemaphoreSlim _pass = new(1, 1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.ForAgents && !options.Value.ForPreview && !await AnyRecordedAsync(stoppingToken))
        {
            return; // no engine in use: nothing to keep true
        }
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.Value.HealthCheckIntervalSeconds), time);
        do
        {
            try
            {
                // While the engine does not answer, nothing is known of its containers: their rows stay as they were
                // (the engine's being down is on /health and in the log once, not once a pass).
                if (!await engine.DownAsync(stoppingToken))
                {
                    await ReconcileAsync(stoppingToken);
                }
            }
            catch (PlaceUnreachableException)
            {
                // Stopped answering during the pass: marked down, said once.
            }
            catch (Exception e) when (e is HttpRequestException or IOException or Docker.DotNet.DockerApiException or TimeoutException)
            {
                ContainersLog.ReconcileFailed(logger, e);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>One whole pass: every team's rows, health checks, orphans.</summary>
    public Task<ReconcileReport> ReconcileAsync(CancellationToken cancellationToken) => GuardedAsync(null, cancellationToken);

    /// <summary>
    /// Before showing a team its environment: only that team's rows get the engine's current state
    /// (running, exited, missing); health and orphans are the periodic pass's work, not a request's.
    /// </summary>
    public Task RefreshTeamAsync(string teamId, CancellationToken cancellationToken) => GuardedAsync(teamId, cancellationToken);

    private async Task<ReconcileReport> GuardedAsync(string? teamId, CancellationToken cancellationToken)
    {
        await _pass.WaitAsync(cancellationToken);
        try
        {
            return await PassAsync(teamId, cancellationToken);
        }
        finally
        {
            _pass.Release();
        }
    }

    private async Task<ReconcileReport> PassAsync(string? teamId, CancellationToken cancellationToken)
    {
        var managed = engine.Containers;
        var containers = (await managed.ListManagedAsync(cancellationToken)).ToDictionary(c => c.Names.First().TrimStart('/'));
        List<ContainerEnvironment> rows;
        await using (var db = await dbs.CreateDbContextAsync(cancellationToken))
        {
            rows = await db.ContainerEnvironments.AsNoTracking()
                .Where(c => c.Status != ContainerStatuses.Removed && c.Status != ContainerStatuses.Missing && (teamId == null || c.TeamId == teamId))
                .ToListAsync(cancellationToken);
        }
        var vanished = new List<string>();
        foreach (var row in rows)
        {
            if (!containers.TryGetValue(row.ContainerName, out var container))
            {
                ContainersLog.Vanished(logger, row.ContainerName, row.TeamId);
                await journal.SetStatusAsync(row.ContainerName, ContainerStatuses.Missing, cancellationToken);
                vanished.Add(row.ContainerName);
                continue;
            }
            var running = container.State == "running";
            var status = running ? ContainerStatuses.Running : ContainerStatuses.Exited;
            if (teamId is not null)
            {
                await journal.SetStatusAsync(row.ContainerName, status, cancellationToken);
                continue;
            }
            var health = running ? await HealthAsync(managed, row.ContainerName, cancellationToken) : "none";
            await journal.SetStatusAsync(row.ContainerName, status, cancellationToken, m => m["health"] = health);
        }
        if (teamId is not null)
        {
            return new ReconcileReport(vanished, []);
        }
        var known = rows.Select(r => r.ContainerName).ToHashSet(StringComparer.Ordinal);
        var orphans = new List<string>();
        foreach (var (name, container) in containers)
        {
            if (known.Contains(name) || time.GetUtcNow().UtcDateTime - container.Created < TimeSpan.FromSeconds(options.Value.OrphanGraceSeconds) || await RecordedAsync(name, cancellationToken))
            {
                continue;
            }
            await managed.RemoveAsync(name, cancellationToken);
            ContainersLog.OrphanRemoved(logger, name, container.Labels.TryGetValue(ManagedContainers.TeamLabel, out var team) ? team : "?");
            orphans.Add(name);
        }
        var idle = options.Value.NetworkIdleMinutes;
        foreach (var network in await managed.Networks.RemoveIdleAsync(TimeSpan.FromMinutes(idle), cancellationToken))
        {
            ContainersLog.TeamNetworkRemoved(logger, network, idle);
        }
        return new ReconcileReport(vanished, orphans);
    }

    private async Task<string> HealthAsync(ManagedContainers managed, string name, CancellationToken cancellationToken)
    {
        if (await managed.HealthyAsync(name, TimeSpan.FromSeconds(options.Value.HealthCheckTimeoutSeconds), cancellationToken))
        {
            _failures.TryRemove(name, out _);
            return "healthy";
        }
        var failures = _failures.AddOrUpdate(name, 1, (_, n) => n + 1);
        if (failures < options.Value.HealthCheckRetries)
        {
            return "starting";
        }
        ContainersLog.Unhealthy(logger, name, failures);
        return "unhealthy";
    }

    /// <summary>Whether a container's row exists now (written after this pass read the rows).</summary>
    private async Task<bool> RecordedAsync(string name, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await db.ContainerEnvironments.AnyAsync(c => c.ContainerName == name && c.Status != ContainerStatuses.Removed && c.Status != ContainerStatuses.Missing, cancellationToken);
    }

    private async Task<bool> AnyRecordedAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await db.ContainerEnvironments.AnyAsync(c => c.Status != ContainerStatuses.Removed && c.Status != ContainerStatuses.Missing, cancellationToken);
    }

    public override void Dispose()
    {
        _pass.Dispose();
        base.Dispose();
    }
}
