using Covibe.Server.Features.Containers;
using System.Text.Json.Nodes;
using Covibe.Execution;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Auth;
using Docker.DotNet;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Machines;

/// <summary><c>GET /api/team/environment</c>: seed 003's getTeamEnvironmentStatus for the caller's team.</summary>
public static class EnvironmentApi
{
    public static IEndpointRouteBuilder MapEnvironmentApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/team/environment", GetEnvironment).WithTags("Team").RequireAuthorization();
        return app;
    }

    /// <summary>The team's containers (name, type, status, health, ports, limits, started): states fresh from the engine, health from the last periodic check.</summary>
    public static async Task<Ok<TeamEnvironmentResponse>> GetEnvironment(
        Caller caller, CovibeDb db, MachineResolver machines, ContainerEngine engine, ContainerReconciler reconciler, CancellationToken cancellationToken)
    {
        var uses = await machines.UsesContainersAsync(caller.TeamId, cancellationToken);
        var recorded = await db.ContainerEnvironments.AnyAsync(c => c.TeamId == caller.TeamId, cancellationToken);
        if (!uses && !recorded)
        {
            return TypedResults.Ok(new TeamEnvironmentResponse(false, "off", null, []));
        }
        var problem = await engine.ProblemAsync(cancellationToken);
        try
        {
            if (problem is null)
            {
                await reconciler.RefreshTeamAsync(caller.TeamId, cancellationToken);
            }
        }
        catch (PlaceUnreachableException e)
        {
            problem = e.Message; // stopped answering just now: the rows as last known
        }
        var rows = await db.ContainerEnvironments.AsNoTracking()
            .Where(c => c.TeamId == caller.TeamId && c.Status != ContainerStatuses.Removed)
            .OrderBy(c => c.Id).ToListAsync(cancellationToken);
        var containers = new List<ContainerEnvironmentDto>();
        foreach (var row in rows)
        {
            var metadata = JsonNode.Parse(row.Metadata) as JsonObject ?? [];
            ContainerLimitsDto? limits = null;
            DateTime? started = null;
            if (problem is null && row.Status != ContainerStatuses.Missing)
            {
                try
                {
                    var inspect = await engine.Containers.ReachAsync(() => engine.Client.Containers.InspectContainerAsync(row.ContainerName, cancellationToken), cancellationToken);
                    limits = inspect.HostConfig is { } host ? new ContainerLimitsDto(host.Memory, host.NanoCPUs / 1e9) : null;
                    started = DateTime.TryParse(inspect.State?.StartedAt, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AdjustToUniversal, out var at) && at.Year > 1 ? DateTime.SpecifyKind(at, DateTimeKind.Utc) : null;
                }
                catch (DockerContainerNotFoundException)
                {
                    // Removed since the pass above: shown as recorded.
                }
                catch (PlaceUnreachableException e)
                {
                    problem = e.Message;
                }
            }
            containers.Add(new ContainerEnvironmentDto(row.ContainerName, row.ContainerType, row.Status,
                metadata["health"]?.GetValue<string>() ?? "none", row.Port is { } port ? [port] : [], limits, started,
                metadata["agentId"]?.GetValue<string>()));
        }
        return TypedResults.Ok(new TeamEnvironmentResponse(uses, problem is null ? "ok" : "unavailable", problem, [.. containers]));
    }
}
