using Covibe.Server.Data;
using Covibe.Server.Features.Secrets;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Push;

/// <summary>Web Push's sealed secrets: members' subscriptions and the server's VAPID private key.</summary>
public sealed class PushSecrets(IDbContextFactory<CovibeDb> dbs) : ISealedSecrets
{
    public const string SubscriptionPurpose = "push-subscription";
    public const string VapidPurpose = "vapid";

    public string What => "Web Push subscriptions and key";

    public async Task<IReadOnlyList<string>> EnvelopesAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return [.. await db.PushSubscriptions.AsNoTracking().Select(s => s.Sealed).ToListAsync(cancellationToken),
            .. await db.PushKeys.AsNoTracking().Select(k => k.PrivateKey).ToListAsync(cancellationToken)];
    }

    public async Task<int> RotateAsync(Func<SealedSecret, string?> reseal, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var rotated = 0;
        foreach (var subscription in await db.PushSubscriptions.ToListAsync(cancellationToken))
        {
            if (reseal(new SealedSecret(subscription.Sealed, subscription.Id, SubscriptionPurpose)) is { } resealed)
            {
                subscription.Sealed = resealed;
                await db.SaveChangesAsync(cancellationToken);
                rotated++;
            }
        }
        // The key row is written once and never changed otherwise: replaced whole, as its private half is its only secret.
        foreach (var key in await db.PushKeys.AsNoTracking().ToListAsync(cancellationToken))
        {
            if (reseal(new SealedSecret(key.PrivateKey, key.Id, VapidPurpose)) is { } resealed)
            {
                await db.PushKeys.Where(k => k.Id == key.Id).ExecuteUpdateAsync(s => s.SetProperty(k => k.PrivateKey, resealed), cancellationToken);
                rotated++;
            }
        }
        return rotated;
    }
}
