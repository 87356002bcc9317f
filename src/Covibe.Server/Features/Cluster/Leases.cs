using Covibe.Server.Data;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Cluster;

/// <summary>
/// Leases in the database for work that must run on one node at a time: a node holds one while it renews it before
/// it expires; another takes it over only once it has (a node that died). Atomic on SQLite and PostgreSQL alike.
/// </summary>
public sealed class Leases(IDbContextFactory<CovibeDb> dbs, TimeProvider time)
{
    /// <summary>
    /// Takes or renews the lease <paramref name="name"/> for <paramref name="holder"/>; false while another node holds it.
    /// One statement (an upsert that updates only a lease of its own or one that ran out), so SQLite and PostgreSQL decide
    /// a race alike and a new lease costs one round trip.
    /// </summary>
    public async Task<bool> HoldAsync(string name, string holder, TimeSpan duration, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await HoldAsync(db, name, holder, duration, cancellationToken);
    }

    /// <summary>
    /// <see cref="HoldAsync(string, string, TimeSpan, CancellationToken)"/> on <paramref name="db"/>, within its transaction:
    /// the lease and the work's own change commit together (or not at all).
    /// </summary>
    public async Task<bool> HoldAsync(CovibeDb db, string name, string holder, TimeSpan duration, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var expires = now + duration;
        return await db.Database.ExecuteSqlInterpolatedAsync($"""
            INSERT INTO leases (name, holder, expires_at) VALUES ({name}, {holder}, {expires})
            ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
            WHERE leases.holder = excluded.holder OR leases.expires_at < {now}
            """, cancellationToken) == 1;
    }

    /// <summary>Takes the lease <paramref name="name"/> whoever holds it: the work moved here (a runner that connected to this node).</summary>
    public async Task TakeAsync(string name, string holder, TimeSpan duration, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            var expires = time.GetUtcNow().UtcDateTime + duration;
            await using var db = await dbs.CreateDbContextAsync(cancellationToken);
            if (await db.Leases.Where(l => l.Name == name)
                .ExecuteUpdateAsync(s => s.SetProperty(l => l.Holder, holder).SetProperty(l => l.ExpiresAt, expires), cancellationToken) == 1)
            {
                return;
            }
            db.Leases.Add(new Lease { Name = name, Holder = holder, ExpiresAt = expires });
            try
            {
                await db.SaveChangesAsync(cancellationToken);
                return;
            }
            catch (DbUpdateException) when (attempt == 0)
            {
                // Another node made it a moment ago: take it from them.
            }
        }
    }

    /// <summary>
    /// Renews every lease named <paramref name="prefix"/>… that <paramref name="holder"/> still holds, in one statement, and
    /// returns their names: a lease missing from the answer was taken over (this node was silent past its expiry).
    /// </summary>
    public async Task<HashSet<string>> RenewAllAsync(string prefix, string holder, TimeSpan duration, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        await db.Leases.Where(l => l.Holder == holder && l.Name.StartsWith(prefix))
            .ExecuteUpdateAsync(s => s.SetProperty(l => l.ExpiresAt, now + duration), cancellationToken);
        return [.. await db.Leases.Where(l => l.Holder == holder && l.Name.StartsWith(prefix)).Select(l => l.Name).ToListAsync(cancellationToken)];
    }

    /// <summary>Who holds <paramref name="name"/> now; null when nobody does (never taken, released, or expired).</summary>
    public async Task<string?> HolderAsync(string name, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await db.Leases.Where(l => l.Name == name && l.ExpiresAt >= now).Select(l => l.Holder).SingleOrDefaultAsync(cancellationToken);
    }

    /// <summary>Gives up every lease named <paramref name="prefix"/>… that <paramref name="holder"/> holds (a node stopping in order).</summary>
    public async Task ReleaseAllAsync(string prefix, string holder, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        await db.Leases.Where(l => l.Holder == holder && l.Name.StartsWith(prefix)).ExecuteDeleteAsync(cancellationToken);
    }

    public async Task ReleaseAsync(string name, string holder, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        await ReleaseAsync(db, name, holder, cancellationToken);
    }

    /// <summary>Gives up <paramref name="name"/> if <paramref name="holder"/> holds it, on <paramref name="db"/> within its transaction (with the change that ends the work).</summary>
    public static Task ReleaseAsync(CovibeDb db, string name, string holder, CancellationToken cancellationToken) =>
        db.Leases.Where(l => l.Name == name && l.Holder == holder).ExecuteDeleteAsync(cancellationToken);
}

/// <summary>Work that must run on one server node at a time (the pool reconciler, an agent's supervision): whoever holds an unexpired lease.</summary>
public sealed class Lease
{
    public required string Name { get; init; }
    public required string Holder { get; set; }
    public DateTime ExpiresAt { get; set; }
}
