using System.Security.Cryptography;
using System.Text;
using Covibe.Execution.Ssh;
using Covibe.Server.Data;
using Covibe.Server.Features.Git;
using Covibe.Server.Features.Secrets;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Repositories;

/// <summary>
/// How other features reach a team's repository: the preview, boxes and pools give the address they follow and get it
/// back with the team's credential when it is the team's connected repository (so private repositories work everywhere),
/// without it otherwise. The credential is opened in memory for the one git process, never written.
/// </summary>
public sealed class RepositoryAccess(IDbContextFactory<CovibeDb> dbs, SecretBox secrets, SshClient ssh)
{
    /// <summary>The team's connected repository, or null.</summary>
    public async Task<TeamRepository?> ConnectedAsync(string teamId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await db.Repositories.AsNoTracking().SingleOrDefaultAsync(r => r.TeamId == teamId && r.Url != null, cancellationToken);
    }

    /// <summary><paramref name="url"/> as git reaches it for the team: with the team's credential when it is the team's repository.</summary>
    public async Task<GitRemote> RemoteAsync(string teamId, string url, bool allowLocal, CancellationToken cancellationToken) =>
        await RemoteAsync(await ConnectedAsync(teamId, cancellationToken), url, allowLocal, cancellationToken);

    /// <summary>As above, with the team's repository already read (<paramref name="connected"/>, or null).</summary>
    public async Task<GitRemote> RemoteAsync(TeamRepository? connected, string url, bool allowLocal, CancellationToken cancellationToken) =>
        connected?.Url == url ? await RemoteAsync(connected!, cancellationToken) : new GitRemote(url, allowLocal);

    /// <summary>Why <paramref name="url"/> is not an address <paramref name="what"/> follows, or null: the team's own repository always is.</summary>
    public static string? Problem(TeamRepository? connected, string url, bool allowLocal, string what) =>
        connected?.Url == url ? null : GitNames.RepositoryProblem(url, allowLocal ? RepositoryFetcher.ServerOrThisDisk : RepositoryFetcher.Server, what);

    /// <summary>The team's repository with its credential opened for git.</summary>
    public async Task<GitRemote> RemoteAsync(TeamRepository repository, CancellationToken cancellationToken)
    {
        var url = repository.Url ?? throw new InvalidOperationException("The repository is not connected.");
        var local = RepositoryAddress.Parse(url, allowLocal: true, out _).Transport == RepositoryTransport.Local;
        return repository.Auth switch
        {
            RepositoryAuth.Token when repository.Token is { } sealedToken => new GitRemote(url, local, Token(repository, sealedToken)),
            RepositoryAuth.SshKey when repository.DeployKey is { } sealedKey =>
                new GitRemote(url, local, await SshAsync(repository.TeamId, sealedKey, repository.HostKeys ?? "", cancellationToken)),
            _ => new GitRemote(url, local),
        };
    }

    /// <summary>Access over SSH with <paramref name="privateKey"/> against <paramref name="knownHosts"/>; also the key's public half.</summary>
    public async Task<(GitAccess Access, string PublicKey)> SshAsync(string teamId, ReadOnlyMemory<byte> privateKey, string knownHosts, CancellationToken cancellationToken)
    {
        var (environment, publicKey) = await ssh.GitEnvironmentAsync("repository:" + teamId, privateKey, knownHosts, cancellationToken);
        return (new GitAccess(environment, overSsh: true), publicKey);
    }

    private async Task<GitAccess> SshAsync(string teamId, string sealedKey, string knownHosts, CancellationToken cancellationToken)
    {
        var key = secrets.Open(sealedKey, teamId, TeamRepository.KeyPurpose);
        try
        {
            return (await SshAsync(teamId, key, knownHosts, cancellationToken)).Access;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    private GitAccess Token(TeamRepository repository, string sealedToken)
    {
        var token = secrets.Open(sealedToken, repository.TeamId, TeamRepository.TokenPurpose);
        try
        {
            return GitAccess.Token(repository.Url!, repository.Username ?? RepositoryService.DefaultUsername, Encoding.UTF8.GetString(token));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(token);
        }
    }
}
