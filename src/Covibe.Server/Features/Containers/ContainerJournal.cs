using System.Text.Json.Nodes;
using Covibe.Server.Data;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Containers;

/// <summary>Writes seed 003's <c>container_environments</c> rows as containers are made and removed.</summary>
public sealed class ContainerJournal(IDbContextFactory<CovibeDb> dbs, TimeProvider time)
{
    /// <summary>A container Covibe made (or found running again) for a team.</summary>
    public async Task RecordAsync(string teamId, string type, string name, IReadOnlyDictionary<string, string?> metadata, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var now = time.GetUtcNow().UtcDateTime;
        var row = await db.ContainerEnvironments.Where(c => c.ContainerName == name).OrderByDescending(c => c.Id).FirstOrDefaultAsync(cancellationToken);
        if (row is null || row.Status is ContainerStatuses.Removed or ContainerStatuses.Missing)
        {
            row = new ContainerEnvironment { TeamId = teamId, ContainerType = type, ContainerName = name, Status = ContainerStatuses.Running, CreatedAt = now };
            db.ContainerEnvironments.Add(row);
        }
        var json = new JsonObject();
        foreach (var (key, value) in metadata)
        {
            json[key] = value;
        }
        row.Status = ContainerStatuses.Running;
        row.UpdatedAt = now;
        row.Metadata = json.ToJsonString();
        await db.SaveChangesAsync(cancellationToken);
    }

    /// <summary>Sets the status of a container's current row (if it has one).</summary>
    public async Task SetStatusAsync(string name, string status, CancellationToken cancellationToken, Action<JsonObject>? metadata = null)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var row = await db.ContainerEnvironments.Where(c => c.ContainerName == name).OrderByDescending(c => c.Id).FirstOrDefaultAsync(cancellationToken);
        if (row is null)
        {
            return;
        }
        if (metadata is not null)
        {
            var json = JsonNode.Parse(row.Metadata) as JsonObject ?? [];
            metadata(json);
            row.Metadata = json.ToJsonString();
        }
        row.Status = status;
        row.UpdatedAt = time.GetUtcNow().UtcDateTime;
        await db.SaveChangesAsync(cancellationToken);
    }
}
