using Covibe.Execution.Egress;
using Covibe.Server.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Egress;

/// <summary>A team's egress policy as stored and as in force (the owner's choice, held to the operator's ceiling).</summary>
public sealed record TeamEgressPolicy(EgressPolicy Policy, EgressMode? Chosen, IReadOnlyList<string> Allow);

/// <summary>
/// Each team's egress policy: the owner's choice (<c>teams.egress_mode</c>, <c>egress_allow</c>) within the operator's
/// default and ceiling (<see cref="EgressOptions"/>), read afresh for every start, so a change holds for the next process
/// at once; and each restricted team's number at the proxy (<c>teams.egress_slot</c>, given once, kept).
/// </summary>
public sealed class EgressPolicies(IDbContextFactory<CovibeDb> dbs, IOptions<EgressOptions> options)
{
    private readonly Dictionary<int, string> _slots = [];
    private readonly Lock _lock = new();

    /// <summary>The policy in force for the team.</summary>
    public async Task<TeamEgressPolicy> ForTeamAsync(string teamId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var team = await db.Teams.AsNoTracking().Where(t => t.Id == teamId).Select(t => new { t.EgressMode, t.EgressAllow }).SingleOrDefaultAsync(cancellationToken);
        return InForce(team?.EgressMode, team?.EgressAllow);
    }

    /// <summary>The policy in force for a team whose row says <paramref name="chosenMode"/> and <paramref name="allow"/> (read with the rest of it).</summary>
    public TeamEgressPolicy InForce(string? chosenMode, string? allow)
    {
        var o = options.Value;
        EgressMode? chosen = chosenMode is null ? null : EgressOptions.Parse(chosenMode);
        var mode = (EgressMode)Math.Min((int)(chosen ?? o.DefaultMode), (int)o.CeilingMode);
        IReadOnlyList<string> list = allow is null ? o.Allow : allow.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return new TeamEgressPolicy(EgressPolicy.From(mode, list), chosen, list);
    }

    /// <summary>Sets the owner's choice: <paramref name="mode"/> null follows the default, <paramref name="allow"/> null the operator's list.</summary>
    public async Task<TeamEgressPolicy> SetAsync(string teamId, EgressMode? mode, IReadOnlyList<string>? allow, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var modeText = mode is null ? null : EgressOptions.Name(mode.Value);
        var allowText = allow is null ? null : string.Join('\n', allow.Select(a => a.Trim()).Where(a => a.Length > 0));
        await db.Teams.Where(t => t.Id == teamId)
            .ExecuteUpdateAsync(u => u.SetProperty(t => t.EgressMode, modeText).SetProperty(t => t.EgressAllow, allowText), cancellationToken);
        return InForce(modeText, allowText);
    }

    /// <summary>The team whose sandboxes connect from <paramref name="slot"/>'s address, or null.</summary>
    public async Task<string?> TeamOfSlotAsync(int slot, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (_slots.TryGetValue(slot, out var known))
            {
                return known;
            }
        }
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var teamId = await db.Teams.Where(t => t.EgressSlot == slot).Select(t => t.Id).SingleOrDefaultAsync(cancellationToken);
        if (teamId is not null)
        {
            lock (_lock)
            {
                _slots[slot] = teamId;
            }
        }
        return teamId;
    }

    /// <summary>Whether any team has had a restricted policy here (so the proxy listens from the start, for agents that outlived a restart).</summary>
    public async Task<bool> AnyRestrictedAsync(CancellationToken cancellationToken)
    {
        if (options.Value.DefaultMode != EgressMode.Open)
        {
            return true;
        }
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await db.Teams.AnyAsync(t => t.EgressSlot != null, cancellationToken);
    }

    /// <summary>The team of a key in the kernel's log (<see cref="TeamEgress.KeyOf"/>) among the teams with a number at the proxy, or null.</summary>
    public async Task<string?> TeamOfKeyAsync(string key, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var teams = await db.Teams.Where(t => t.EgressSlot != null).Select(t => t.Id).ToListAsync(cancellationToken);
        return teams.FirstOrDefault(t => TeamEgress.KeyOf(t) == key);
    }

    /// <summary>The team's number at the proxy: the one it has, or the next free one (unique in the database: two nodes cannot take the same).</summary>
    public async Task<int> SlotAsync(string teamId, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            await using var db = await dbs.CreateDbContextAsync(cancellationToken);
            if (await db.Teams.Where(t => t.Id == teamId).Select(t => t.EgressSlot).SingleOrDefaultAsync(cancellationToken) is { } slot)
            {
                return slot;
            }
            var next = (await db.Teams.MaxAsync(t => t.EgressSlot, cancellationToken) ?? 0) + 1;
            try
            {
                await db.Teams.Where(t => t.Id == teamId && t.EgressSlot == null).ExecuteUpdateAsync(u => u.SetProperty(t => t.EgressSlot, next), cancellationToken);
            }
            catch (Exception e) when (e is DbUpdateException or System.Data.Common.DbException && attempt < 5)
            {
                // Taken by another team at the same moment: the next one.
            }
        }
    }
}
