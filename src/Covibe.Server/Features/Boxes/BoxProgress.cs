using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Events;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Boxes;

/// <summary>A box's making as its holder sees it: each step written to its log, recorded on the box and told to the team.</summary>
public sealed class BoxProgress(IDbContextFactory<CovibeDb> dbs, ITeamEvents events, ILogger<BoxProgress> logger)
{
    /// <summary>
    /// Starts <paramref name="step"/>: says <paramref name="line"/> in the box's log, records it (with any <paramref name="change"/>,
    /// and <paramref name="alongside"/>'s writes in the same transaction) and tells the team.
    /// </summary>
    public async Task StepAsync(
        Box box, string step, BoxLog log, string line, CancellationToken cancellationToken,
        Action<Box>? change = null, Func<CovibeDb, CancellationToken, Task>? alongside = null)
    {
        log.Line($"[covibe] {line}");
        BoxesLog.Step(logger, box.Id, box.TeamId, step);
        var saved = await SaveAsync(box.Id, b =>
        {
            b.Step = step;
            change?.Invoke(b);
        }, cancellationToken, alongside);
        if (saved.HolderId is not null)
        {
            await BroadcastAsync(saved, cancellationToken);
        }
    }

    /// <summary>
    /// Changes the stored box, and makes <paramref name="alongside"/>'s writes in the same transaction (one commit, all or
    /// nothing); a box released meanwhile stops being made (<see cref="OperationCanceledException"/>).
    /// </summary>
    public async Task<Box> SaveAsync(string id, Action<Box> change, CancellationToken cancellationToken, Func<CovibeDb, CancellationToken, Task>? alongside = null)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        await using var transaction = alongside is null ? null : await db.Database.BeginTransactionAsync(cancellationToken);
        var box = await db.Boxes.SingleAsync(b => b.Id == id, cancellationToken);
        if (box.Status == BoxStatuses.Released)
        {
            throw new OperationCanceledException("The box was released.");
        }
        change(box);
        await db.SaveChangesAsync(cancellationToken);
        if (transaction is not null)
        {
            await alongside!(db, cancellationToken);
            await transaction.CommitAsync(cancellationToken);
        }
        return box;
    }

    /// <summary>Tells the team about a held box's change (<c>box_updated</c>).</summary>
    public async Task BroadcastAsync(Box box, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        events.Publish(box.TeamId, new BoxUpdatedMessage(await BoxService.DtoAsync(db, box, cancellationToken)));
    }
}
