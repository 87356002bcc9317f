using Covibe.Server.Data;
using Covibe.Server.Features.Secrets;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Repositories;

/// <summary>The teams' repository credentials, sealed: deploy keys and access tokens.</summary>
public sealed class RepositorySecrets(IDbContextFactory<CovibeDb> dbs) : SealedRows<TeamRepository>(dbs)
{
    public override string What => "repository credentials";

    protected override IQueryable<TeamRepository> Rows(CovibeDb db) => db.Repositories.Where(r => r.DeployKey != null || r.Token != null);

    protected override IEnumerable<(SealedSecret, Action<string>)> Secrets(TeamRepository repository)
    {
        if (repository.DeployKey is { } key)
        {
            yield return (new SealedSecret(key, repository.TeamId, TeamRepository.KeyPurpose), resealed => repository.DeployKey = resealed);
        }
        if (repository.Token is { } token)
        {
            yield return (new SealedSecret(token, repository.TeamId, TeamRepository.TokenPurpose), resealed => repository.Token = resealed);
        }
    }
}
