using Covibe.Server.Data;
using Covibe.Server.Features.Secrets;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Repositories;

/// <summary>The teams' repository credentials, sealed: deploy keys and access tokens.</summary>
public sealed class RepositorySecrets(IDbContextFactory<CovibeDb> dbs) : ISealedSecrets
{
    public string What => "repository credentials";

    public async Task<IReadOnlyList<string>> EnvelopesAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var rows = await db.Repositories.AsNoTracking().Select(r => new { r.DeployKey, r.Token }).ToListAsync(cancellationToken);
        return [.. rows.SelectMany(r => new[] { r.DeployKey, r.Token }).OfType<string>()];
    }

    public async Task<int> RotateAsync(Func<SealedSecret, string?> reseal, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var rotated = 0;
        foreach (var repository in await db.Repositories.ToListAsync(cancellationToken))
        {
            var key = repository.DeployKey is { } k ? reseal(new SealedSecret(k, repository.TeamId, TeamRepository.KeyPurpose)) : null;
            var token = repository.Token is { } t ? reseal(new SealedSecret(t, repository.TeamId, TeamRepository.TokenPurpose)) : null;
            repository.DeployKey = key ?? repository.DeployKey;
            repository.Token = token ?? repository.Token;
            rotated += (key is null ? 0 : 1) + (token is null ? 0 : 1);
            await db.SaveChangesAsync(cancellationToken);
        }
        return rotated;
    }
}
