using Covibe.Server.Data;
using Covibe.Server.Features.Secrets;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Previews;

/// <summary>The previews' webhook secrets, sealed.</summary>
public sealed class PreviewSecrets(IDbContextFactory<CovibeDb> dbs) : SealedRows<Preview>(dbs)
{
    public const string WebhookPurpose = PreviewService.WebhookPurpose;

    public override string What => "preview webhook secrets";

    protected override IQueryable<Preview> Rows(CovibeDb db) => db.Previews;

    protected override IEnumerable<(SealedSecret, Action<string>)> Secrets(Preview preview) =>
        [(new SealedSecret(preview.WebhookSecret, preview.TeamId, WebhookPurpose), resealed => preview.WebhookSecret = resealed)];
}
