using Covibe.Server.Data;
using Covibe.Server.Features.Secrets;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Boxes;

/// <summary>Boxes' <c>.env</c> files, sealed (each bound to its team and box).</summary>
public sealed class BoxEnvSecrets(IDbContextFactory<CovibeDb> dbs) : ISealedSecrets
{
    public string What => "boxes' .env files";

    public async Task<IReadOnlyList<string>> EnvelopesAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await db.Boxes.AsNoTracking().Where(b => b.Env != null).Select(b => b.Env!).ToListAsync(cancellationToken);
    }

    public async Task<int> RotateAsync(Func<SealedSecret, string?> reseal, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var rotated = 0;
        foreach (var box in await db.Boxes.Where(b => b.Env != null).ToListAsync(cancellationToken))
        {
            if (reseal(new SealedSecret(box.Env!, BoxSecrets.EnvOwner(box.TeamId, box.Id), BoxSecrets.EnvPurpose)) is { } resealed)
            {
                box.Env = resealed;
                await db.SaveChangesAsync(cancellationToken);
                rotated++;
            }
        }
        return rotated;
    }
}
