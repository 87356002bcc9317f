using System.Security.Cryptography;
using Covibe.Server.Data;
using Covibe.Server.Features.Secrets;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Boxes;

/// <summary>
/// How a box is made (seed 002's provisioner and VM lifecycle), each step recorded on the box and told to the team: its
/// kind makes it up to its repository at the commit (<see cref="IBoxKind"/>: in a container, or on a VM), then its
/// <c>.env</c> goes in, and it is ready. <see cref="BoxProvisioner"/> decides when and under which lease.
/// </summary>
public sealed class BoxBuilder(
    BoxWork work,
    BoxKinds kinds,
    BoxProgress progress,
    SecretBox secrets,
    TimeProvider time)
{
    /// <summary>
    /// Makes the box, step by step, recording each step; throws (a <see cref="BoxProvisionException"/> and the like) when a
    /// step fails. <paramref name="whenReady"/> writes with the box's ready state, in its transaction (the maker's lease goes).
    /// </summary>
    public async Task MakeAsync(Box box, BoxLog log, Func<CovibeDb, CancellationToken, Task> whenReady, CancellationToken cancellationToken)
    {
        var kind = kinds.Of(box);
        await kind.MakeAsync(box, log, cancellationToken);
        // The .env, into the box (in a container: into its memory only).
        if (box.Env is not null)
        {
            await progress.StepAsync(box, BoxSteps.Env, log, kind.EnvStep, cancellationToken);
            await InjectEnvAsync(box, cancellationToken);
        }
        // Ready, its pool's run of failures ended and the maker's lease given up: one commit.
        await progress.StepAsync(box, BoxSteps.Ready, log, "Ready", cancellationToken, b =>
        {
            b.Status = BoxStatuses.Ready;
            b.ReadyAt = time.GetUtcNow().UtcDateTime;
        }, async (db, ct) =>
        {
            if (box.PoolId is { } poolId)
            {
                await db.BoxPools.Where(p => p.Id == poolId)
                    .ExecuteUpdateAsync(s => s.SetProperty(p => p.Failures, 0).SetProperty(p => p.LastError, (string?)null), ct);
            }
            await whenReady(db, ct);
        });
        if (box.PoolId is not null)
        {
            work.Reconcile();
        }
    }

    /// <summary>Writes the box's sealed <c>.env</c> into it (again, after a restart, where it lives in the box's memory).</summary>
    public async Task InjectEnvAsync(Box box, CancellationToken cancellationToken)
    {
        var env = secrets.Open(box.Env!, BoxSecrets.EnvOwner(box.TeamId, box.Id), BoxSecrets.EnvPurpose);
        try
        {
            await kinds.Of(box).WriteEnvAsync(box, env, cancellationToken);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(env);
        }
    }
}
