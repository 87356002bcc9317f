using Covibe.Server.Data;
using Covibe.Server.Features.Secrets;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Previews;

/// <summary>The previews' webhook secrets, sealed.</summary>
public sealed class PreviewSecrets(IDbContextFactory<CovibeDb> dbs) : ISealedSecrets
{
    public const string WebhookPurpose = PreviewService.WebhookPurpose;

    public string What => "preview webhook secrets";

    public async Task<IReadOnlyList<string>> EnvelopesAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await db.Previews.AsNoTracking().Select(p => p.WebhookSecret).ToListAsync(cancellationToken);
    }

    public async Task<int> RotateAsync(Func<SealedSecret, string?> reseal, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var rotated = 0;
        foreach (var preview in await db.Previews.ToListAsync(cancellationToken))
        {
            if (reseal(new SealedSecret(preview.WebhookSecret, preview.TeamId, WebhookPurpose)) is { } resealed)
            {
                preview.WebhookSecret = resealed;
                await db.SaveChangesAsync(cancellationToken);
                rotated++;
            }
        }
        return rotated;
    }
}
