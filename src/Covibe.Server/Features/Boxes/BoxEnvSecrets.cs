using Covibe.Server.Data;
using Covibe.Server.Features.Secrets;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Boxes;

/// <summary>Boxes' <c>.env</c> files, sealed (each bound to its team and box).</summary>
public sealed class BoxEnvSecrets(IDbContextFactory<CovibeDb> dbs) : SealedRows<Box>(dbs)
{
    public override string What => "boxes' .env files";

    protected override IQueryable<Box> Rows(CovibeDb db) => db.Boxes.Where(b => b.Env != null);

    protected override IEnumerable<(SealedSecret, Action<string>)> Secrets(Box box) =>
        [(new SealedSecret(box.Env!, BoxSecrets.EnvOwner(box.TeamId, box.Id), BoxSecrets.EnvPurpose), resealed => box.Env = resealed)];
}
