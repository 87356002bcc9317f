using Covibe.Server.Data;
using Covibe.Server.Features.Secrets;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Push;

/// <summary>Members' Web Push subscriptions, sealed (each bound to its row).</summary>
public sealed class PushSecrets(IDbContextFactory<CovibeDb> dbs) : SealedRows<PushSubscriptionRow>(dbs)
{
    public const string SubscriptionPurpose = "push-subscription";
    public const string VapidPurpose = "vapid";

    public override string What => "Web Push subscriptions";

    protected override IQueryable<PushSubscriptionRow> Rows(CovibeDb db) => db.PushSubscriptions;

    protected override IEnumerable<(SealedSecret, Action<string>)> Secrets(PushSubscriptionRow row) =>
        [(new SealedSecret(row.Sealed, row.Id, SubscriptionPurpose), resealed => row.Sealed = resealed)];
}

/// <summary>The server's VAPID private key, sealed.</summary>
public sealed class VapidKeySecrets(IDbContextFactory<CovibeDb> dbs) : SealedRows<PushKeyRow>(dbs)
{
    public override string What => "the Web Push (VAPID) key";

    protected override IQueryable<PushKeyRow> Rows(CovibeDb db) => db.PushKeys;

    protected override IEnumerable<(SealedSecret, Action<string>)> Secrets(PushKeyRow row) =>
        [(new SealedSecret(row.PrivateKey, row.Id, PushSecrets.VapidPurpose), resealed => row.PrivateKey = resealed)];
}
