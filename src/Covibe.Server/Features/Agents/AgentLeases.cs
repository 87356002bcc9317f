using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Cluster;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Agents;

/// <summary>
/// Which node follows each unfinished agent: a lease in the database (<c>agent:&lt;id&gt;</c>), taken by the node that
/// starts it, renewed by its holder every <see cref="AgentsOptions.LeaseSeconds"/>/4, and taken over by another node
/// once it has run out (the holder died). A restarted node has its old id and takes its own leases back at once.
/// </summary>
public sealed class AgentLeases(IDbContextFactory<CovibeDb> dbs, Leases leases, ThisNode node, IOptions<AgentsOptions> options, TimeProvider time)
{
    public const string Prefix = "agent:";

    public string Node => node.Id;

    public TimeSpan Duration => TimeSpan.FromSeconds(options.Value.LeaseSeconds);

    /// <summary>How often the holder renews its leases and every node looks for agents nobody follows.</summary>
    public TimeSpan Interval => Duration / 4;

    public Task<bool> TakeAsync(string agentId, CancellationToken cancellationToken) =>
        leases.HoldAsync(Prefix + agentId, node.Id, Duration, cancellationToken);

    /// <summary>Renews this node's agent leases; the agents whose lease it still holds.</summary>
    public async Task<HashSet<string>> RenewAsync(CancellationToken cancellationToken) =>
        [.. (await leases.RenewAllAsync(Prefix, node.Id, Duration, cancellationToken)).Select(name => name[Prefix.Length..])];

    public Task ReleaseAsync(string agentId, CancellationToken cancellationToken) =>
        leases.ReleaseAsync(Prefix + agentId, node.Id, cancellationToken);

    /// <summary>Gives up every agent this node follows, so that another node takes them up at its next look rather than when the leases run out.</summary>
    public Task ReleaseAllAsync(CancellationToken cancellationToken) => leases.ReleaseAllAsync(Prefix, node.Id, cancellationToken);

    /// <summary>The node following <paramref name="agentId"/> now, or null when none is (it is being taken over).</summary>
    public Task<string?> HolderAsync(string agentId, CancellationToken cancellationToken) =>
        leases.HolderAsync(Prefix + agentId, cancellationToken);

    /// <summary>
    /// Unfinished agents that no other node follows: never followed, released, their holder's lease ran out, or held by
    /// this node (a previous run of it, or a follow that stopped); the caller skips those it follows.
    /// </summary>
    public async Task<List<string>> UnfollowedAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var me = node.Id;
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await db.Agents
            .Where(a => !AgentStatuses.Final.Contains(a.Status) && a.Pid != null
                && !db.Leases.Any(l => l.Name == Prefix + a.Id && l.ExpiresAt >= now && l.Holder != me))
            .Select(a => a.Id)
            .ToListAsync(cancellationToken);
    }
}
