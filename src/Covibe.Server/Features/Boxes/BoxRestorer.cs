using System.Security.Cryptography;
using System.Threading.Channels;
using Covibe.Server.Data;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Boxes;

/// <summary>
/// Keeps ready boxes whole where they keep their <c>.env</c> in memory (containers): once where they run answers (at
/// this node's start, and again each time the engine comes back), every ready box is made to run again if it stopped
/// and gets its <c>.env</c> back; meanwhile it watches for boxes that start again (a restart outside Covibe, or the
/// machine's) and writes theirs again at once. Writing a <c>.env</c> twice is harmless: each node of several does it.
/// </summary>
public sealed class BoxRestorer(
    IDbContextFactory<CovibeDb> dbs,
    BoxKinds kinds,
    BoxBuilder builder,
    BoxProgress progress,
    BoxWork work,
    TimeProvider time,
    ILogger<BoxRestorer> logger) : BackgroundService
{
    /// <summary>How often to look again while there is nothing to watch, or where boxes run does not answer.</summary>
    private static readonly TimeSpan Recheck = TimeSpan.FromSeconds(2);

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(kinds.All.Where(k => k.EnvInMemory).Select(k => KeepAsync(k, stoppingToken)));

    private async Task KeepAsync(IBoxKind kind, CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (!await AnyAsync(kind, stoppingToken) || await kind.ProblemAsync(stoppingToken) is not null)
                {
                    await Task.Delay(Recheck, time, stoppingToken);
                    continue;
                }
                await WatchAsync(kind, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is IOException or HttpRequestException or Docker.DotNet.DockerApiException or DbUpdateException or InvalidOperationException)
            {
                // Where the boxes run stopped answering (the events with it), or the database: every box is looked at again.
                BoxesLog.RestoreInterrupted(logger, kind.Name, e.Message);
                await Task.Delay(Recheck, time, stoppingToken);
            }
        }
    }

    /// <summary>Watches first, then restores every ready box: a box that starts in between is seen by one or the other.</summary>
    private async Task WatchAsync(IBoxKind kind, CancellationToken stoppingToken)
    {
        var started = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
        using var watch = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var watching = kind.WatchStartsAsync(id => started.Writer.TryWrite(id), watch.Token);
        var restoring = Task.Run(async () =>
        {
            try
            {
                foreach (var box in await ReadyAsync(kind, null, stoppingToken))
                {
                    await RestoreAsync(kind, box, bringBack: true, stoppingToken);
                }
                await foreach (var id in started.Reader.ReadAllAsync(stoppingToken))
                {
                    foreach (var box in await ReadyAsync(kind, id, stoppingToken))
                    {
                        await RestoreAsync(kind, box, bringBack: false, stoppingToken);
                    }
                }
            }
            catch
            {
                await watch.CancelAsync(); // the watch is looked at again from the start
                throw;
            }
        }, stoppingToken);
        try
        {
            await watching;
        }
        catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
        {
            // Stopped by the restoring side's failure, said below.
        }
        finally
        {
            started.Writer.TryComplete();
            await watch.CancelAsync();
            try
            {
                await restoring;
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested && e is not OperationCanceledException)
            {
                BoxesLog.RestoreInterrupted(logger, kind.Name, e.Message);
            }
        }
    }

    private async Task RestoreAsync(IBoxKind kind, Box box, bool bringBack, CancellationToken cancellationToken)
    {
        try
        {
            if (bringBack && !await kind.BringBackAsync(box, cancellationToken))
            {
                await GoneAsync(box, cancellationToken);
                return;
            }
            if (box.Env is not null)
            {
                await builder.InjectEnvAsync(box, cancellationToken);
                BoxesLog.EnvRestored(logger, box.Id, box.TeamId);
            }
        }
        catch (Exception e) when (e is BoxProvisionException or CryptographicException || (e is IOException && e is not Execution.PlaceUnreachableException))
        {
            // One box that cannot be restored never stops the others.
            BoxesLog.RestoreFailed(logger, box.Id, e.Message);
        }
    }

    /// <summary>Its container was removed outside Covibe: the box is failed, saying so, and what is left is cleaned up.</summary>
    private async Task GoneAsync(Box box, CancellationToken cancellationToken)
    {
        const string Error = "The box's container is gone (removed outside Covibe); request a new box.";
        try
        {
            var failed = await progress.SaveAsync(box.Id, b =>
            {
                b.Status = BoxStatuses.Failed;
                b.Step = BoxSteps.Failed;
                b.Error = Error;
            }, cancellationToken);
            BoxesLog.Failed(logger, box.Id, box.TeamId, Error);
            if (failed.HolderId is not null)
            {
                await progress.BroadcastAsync(failed, cancellationToken);
            }
            work.Provision();
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // Released meanwhile.
        }
    }

    private async Task<bool> AnyAsync(IBoxKind kind, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await db.Boxes.AnyAsync(b => b.Backend == kind.Name && (b.Status == BoxStatuses.Ready || b.Status == BoxStatuses.Provisioning), cancellationToken);
    }

    private async Task<List<Box>> ReadyAsync(IBoxKind kind, string? id, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await db.Boxes.AsNoTracking()
            .Where(b => b.Status == BoxStatuses.Ready && b.Backend == kind.Name && (id == null || b.Id == id))
            .ToListAsync(cancellationToken);
    }
}
