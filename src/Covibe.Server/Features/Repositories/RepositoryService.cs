using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Covibe.Execution.Ssh;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Git;
using Covibe.Server.Features.Secrets;
using Covibe.Server.Http;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Repositories;

/// <summary>
/// The team's repository (issue 25): the owner connects it once, with a deploy key Covibe makes (or one they give) or an
/// HTTPS token; the server pins the SSH host key on first use, checks that the repository answers with that credential,
/// and only then keeps it, sealed. Members read it without the credential.
/// </summary>
public sealed partial class RepositoryService(
    IDbContextFactory<CovibeDb> dbs, SecretBox secrets, GitMirror git, RepositoryAccess access, IOptions<RepositoriesOptions> options,
    TimeProvider time, ILogger<RepositoryService> logger)
{
    public const string DefaultUsername = "x-access-token";

    public async Task<TeamRepositoryResponse?> GetAsync(string teamId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var repository = await db.Repositories.AsNoTracking().SingleOrDefaultAsync(r => r.TeamId == teamId, cancellationToken);
        if (repository is null)
        {
            return null;
        }
        var by = repository.ConnectedBy is { } userId ? await db.Users.Where(u => u.Id == userId).Select(u => u.Name).SingleOrDefaultAsync(cancellationToken) : null;
        return Response(repository, by);
    }

    /// <summary>Makes the team a new deploy key (replacing its earlier one): its public half to paste into the forge.</summary>
    public async Task<DeployKeyResponse> MakeDeployKeyAsync(Caller owner, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        await OwnerOnlyAsync(db, owner, "make the team's deploy key", cancellationToken);
        var pair = DeployKeys.Create($"covibe-{owner.TeamId}");
        try
        {
            var repository = await db.Repositories.SingleOrDefaultAsync(r => r.TeamId == owner.TeamId, cancellationToken);
            if (repository is null)
            {
                repository = new TeamRepository { TeamId = owner.TeamId };
                db.Repositories.Add(repository);
            }
            repository.DeployKey = secrets.Seal(pair.PrivateKeyPem, owner.TeamId, TeamRepository.KeyPurpose);
            repository.DeployPublicKey = pair.PublicKey;
            repository.UpdatedAt = time.GetUtcNow().UtcDateTime;
            await db.SaveChangesAsync(cancellationToken);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pair.PrivateKeyPem);
        }
        RepositoriesLog.DeployKeyMade(logger, owner.TeamId, pair.Fingerprint, owner.UserId);
        return new DeployKeyResponse(pair.PublicKey, pair.Fingerprint);
    }

    /// <summary>Connects the team's repository, once it answered with the credential given; nothing is kept when it did not.</summary>
    public async Task<TeamRepositoryResponse> ConnectAsync(Caller owner, ConnectRepositoryRequest request, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        await OwnerOnlyAsync(db, owner, "connect the team's repository", cancellationToken);
        var address = RepositoryAddress.Parse(request.Url, options.Value.AllowLocalRepositories, out var problem);
        if (problem is not null)
        {
            throw RequestRefusedException.Field("url", problem);
        }
        var branch = string.IsNullOrWhiteSpace(request.Branch) ? null : request.Branch.Trim();
        if (branch is not null && !GitNames.IsBranchName(branch))
        {
            throw RequestRefusedException.Field("branch", $"'{branch}' is not a branch name.");
        }
        var existing = await db.Repositories.SingleOrDefaultAsync(r => r.TeamId == owner.TeamId, cancellationToken);
        var connection = address.Transport == RepositoryTransport.Ssh
            ? await SshConnectionAsync(owner.TeamId, address, request, existing, cancellationToken)
            : TokenConnection(address, request);
        try
        {
            var remote = new GitRemote(address.Url, address.Transport == RepositoryTransport.Local, connection.Access);
            branch ??= await Reach(() => git.DefaultBranchAsync(remote, cancellationToken), address, connection, owner.TeamId)
                ?? throw RequestRefusedException.Field("branch", "The repository has no default branch yet (is it empty?): push a first commit, or name the branch.");
            if (await Reach(() => git.HeadAsync(remote, branch, cancellationToken), address, connection, owner.TeamId) is null)
            {
                throw RequestRefusedException.Field("branch", $"The repository has no branch '{branch}'.");
            }

            var now = time.GetUtcNow().UtcDateTime;
            if (existing is null)
            {
                existing = new TeamRepository { TeamId = owner.TeamId };
                db.Repositories.Add(existing);
            }
            existing.Url = address.Url;
            existing.Branch = branch;
            existing.Auth = connection.Auth;
            existing.Token = connection.Token is { } token ? secrets.Seal(token, owner.TeamId, TeamRepository.TokenPurpose) : null;
            existing.Username = connection.Token is null ? null : connection.Username;
            if (connection.NewKey is { } key)
            {
                existing.DeployKey = secrets.Seal(key, owner.TeamId, TeamRepository.KeyPurpose);
                existing.DeployPublicKey = connection.PublicKey;
            }
            existing.HostKeys = connection.HostKeys;
            existing.ConnectedBy = owner.UserId;
            existing.ConnectedAt = now;
            existing.UpdatedAt = now;
            await db.SaveChangesAsync(cancellationToken);
            RepositoriesLog.Connected(logger, owner.TeamId, address.Url, branch, connection.Auth, owner.UserId);
            return Response(existing, owner.Name);
        }
        finally
        {
            connection.Wipe();
        }
    }

    public async Task<bool> DisconnectAsync(Caller owner, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        await OwnerOnlyAsync(db, owner, "disconnect the team's repository", cancellationToken);
        var removed = await db.Repositories.Where(r => r.TeamId == owner.TeamId).ExecuteDeleteAsync(cancellationToken) > 0;
        if (removed)
        {
            RepositoriesLog.Disconnected(logger, owner.TeamId, owner.UserId);
        }
        return removed;
    }

    /// <summary>
    /// Over SSH: the key given (checked by the ssh-agent) or the team's deploy key, and the host keys: the one the owner
    /// confirmed, those pinned before for the same host (a changed key must be noticed, not pinned again), or those it offers now.
    /// </summary>
    private async Task<Connection> SshConnectionAsync(string teamId, RepositoryAddress address, ConnectRepositoryRequest request, TeamRepository? existing, CancellationToken cancellationToken)
    {
        byte[] key;
        var given = !string.IsNullOrWhiteSpace(request.PrivateKey);
        if (given)
        {
            key = Encoding.UTF8.GetBytes(request.PrivateKey!.Trim() + "\n");
        }
        else if (existing?.DeployKey is { } sealedKey)
        {
            key = secrets.Open(sealedKey, teamId, TeamRepository.KeyPurpose);
        }
        else
        {
            throw RequestRefusedException.Field("privateKey",
                "Over SSH the repository needs a key: make the team a deploy key first (covibe repo key, or POST /api/team/repository/deploy-key) and add it to the repository, or give a private key.");
        }
        try
        {
            var hostKeys = await HostKeysAsync(address, request.HostKeyFingerprint, existing, cancellationToken);
            GitAccess gitAccess;
            string publicKey;
            try
            {
                (gitAccess, publicKey) = await access.SshAsync(teamId, key, hostKeys, cancellationToken);
            }
            catch (SshException e)
            {
                throw RequestRefusedException.Field("privateKey", e.Message);
            }
            // The deploy key as the owner was shown it (with its comment); a key given now as ssh-keygen derives it.
            publicKey = given ? publicKey : existing?.DeployPublicKey ?? publicKey;
            return new Connection(RepositoryAuth.SshKey, gitAccess, publicKey, hostKeys, given ? key : null, null, null, given ? null : key);
        }
        catch
        {
            CryptographicOperations.ZeroMemory(key);
            throw;
        }
    }

    private static async Task<string> HostKeysAsync(RepositoryAddress address, string? confirmed, TeamRepository? existing, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(confirmed) && existing is { HostKeys: { } pinned, Url: { } url }
            && RepositoryAddress.Parse(url, allowLocal: false, out _) is { Transport: RepositoryTransport.Ssh } before
            && before.Host == address.Host && before.Port == address.Port)
        {
            return pinned;
        }
        var offered = await HostKeys.ScanAsync(address.Host, address.Port, cancellationToken);
        if (offered.Count == 0)
        {
            throw new RequestRefusedException(Refusal.Unreachable, "repository-unreachable", "The repository could not be reached",
                $"{address.KnownHostsName} did not answer over SSH (no host key was offered).");
        }
        if (string.IsNullOrWhiteSpace(confirmed))
        {
            return string.Join('\n', offered.Select(k => k.KnownHostsLine));
        }
        if (HostKeys.ParseConfirmed(confirmed) is null)
        {
            throw RequestRefusedException.Field("hostKeyFingerprint", "Give the host key's SHA256 fingerprint, like SHA256:AbC... (ssh-keygen -l prints it).");
        }
        var matching = HostKeys.Matching(offered, confirmed);
        return matching.Count > 0
            ? string.Join('\n', matching.Select(k => k.KnownHostsLine))
            : throw new RequestRefusedException(Refusal.Unprocessable, "host-key-mismatch", "The host key is not the one confirmed",
                $"{address.KnownHostsName} offered {string.Join(", ", offered.Select(k => $"{k.Type} {k.Fingerprint}"))}, not {confirmed.Trim()}. Check the fingerprint with the repository's host; someone may be in the middle.");
    }

    private static Connection TokenConnection(RepositoryAddress address, ConnectRepositoryRequest request)
    {
        if (!string.IsNullOrWhiteSpace(request.PrivateKey))
        {
            throw RequestRefusedException.Field("privateKey", "A key is for an SSH address (git@host:owner/app.git); over https give a token.");
        }
        if (string.IsNullOrEmpty(request.Token))
        {
            return new Connection(RepositoryAuth.None, null, null, null, null, null, null, null);
        }
        if (address.Transport == RepositoryTransport.Local)
        {
            throw RequestRefusedException.Field("token", "A repository on this machine's disk takes no token.");
        }
        if (address.Transport == RepositoryTransport.Http && !address.IsLoopback)
        {
            throw RequestRefusedException.Field("token", "A token goes over https only: over plain http anyone on the way could read it.");
        }
        if (request.Token.Length > 4096 || request.Token.Any(c => char.IsControl(c) || char.IsWhiteSpace(c)))
        {
            throw RequestRefusedException.Field("token", "The token has spaces or control characters, or is too long: paste it alone.");
        }
        var username = string.IsNullOrWhiteSpace(request.Username) ? DefaultUsername : request.Username.Trim();
        if (!UserName().IsMatch(username))
        {
            throw RequestRefusedException.Field("username", "Letters, digits, '.', '_', '-' and '@' only (at most 100).");
        }
        var token = Encoding.UTF8.GetBytes(request.Token);
        return new Connection(RepositoryAuth.Token, GitAccess.Token(address.Url, username, request.Token), null, null, null, token, username, null);
    }

    /// <summary>Runs a git call on the remote; a refusal becomes a problem that says what to do (with the deploy key's public half to add).</summary>
    private async Task<T> Reach<T>(Func<Task<T>> call, RepositoryAddress address, Connection connection, string teamId)
    {
        try
        {
            return await call();
        }
        catch (GitMirrorException e)
        {
            RepositoriesLog.Refused(logger, teamId, address.Url, e.Message);
            throw Explain(e.Message, address, connection.PublicKey, connection.Auth);
        }
    }

    internal static RequestRefusedException Explain(string error, RepositoryAddress address, string? publicKey, string auth)
    {
        if (error.Contains("Host key verification failed", StringComparison.Ordinal) || error.Contains("REMOTE HOST IDENTIFICATION HAS CHANGED", StringComparison.Ordinal))
        {
            return new RequestRefusedException(Refusal.Unprocessable, "host-key-mismatch", "The host key changed",
                $"{address.KnownHostsName} no longer offers the SSH host key pinned for it. If its server was rebuilt, disconnect the repository and connect it again to pin the new key; otherwise someone may be in the middle.");
        }
        if (error.Contains("Permission denied", StringComparison.Ordinal))
        {
            return new RequestRefusedException(Refusal.Unprocessable, "repository-refused", "The repository refused the key",
                $"{address.KnownHostsName} refused the key. Add it to the repository as a deploy key (with write access, for pushes): {publicKey}");
        }
        if (error.Contains("could not read Username", StringComparison.Ordinal) && auth != RepositoryAuth.Token)
        {
            return new RequestRefusedException(Refusal.Unprocessable, "repository-refused", "The repository asks for a credential",
                $"{address.Host} asks who is reading: give an access token with read and write access to the repository's contents (or an SSH address with the team's deploy key).");
        }
        if (error.Contains("could not read Username", StringComparison.Ordinal) || error.Contains("Authentication failed", StringComparison.Ordinal)
            || error.Contains(" 401", StringComparison.Ordinal) || error.Contains(" 403", StringComparison.Ordinal))
        {
            return new RequestRefusedException(Refusal.Unprocessable, "repository-refused", "The repository refused the token",
                $"{address.Host} refused the credential. Check the token (it needs read and write access to the repository's contents) and the user name.");
        }
        return new RequestRefusedException(Refusal.Unreachable, "repository-unreachable", "The repository could not be reached", $"The repository could not be read: {error}");
    }

    private static async Task OwnerOnlyAsync(CovibeDb db, Caller caller, string what, CancellationToken cancellationToken)
    {
        if (!await caller.IsTeamOwnerAsync(db, cancellationToken))
        {
            throw RequestRefusedException.Forbidden($"Only the team owner can {what}.");
        }
    }

    private static TeamRepositoryResponse Response(TeamRepository repository, string? connectedBy) =>
        new(repository.Url, repository.Branch, repository.Url is null ? RepositoryAuth.None : repository.Auth, repository.DeployPublicKey,
            repository.DeployPublicKey is { } publicKey ? DeployKeys.FingerprintOf(publicKey) : null,
            [.. (repository.HostKeys ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(HostKeys.Parse).OfType<HostKey>()
                .Select(k => new RepositoryHostKeyDto(k.Type, k.Fingerprint))],
            repository.Url is null ? null : connectedBy, repository.Url is null ? null : repository.ConnectedAt);

    /// <summary>
    /// A credential on its way in: its access for the check, and what to keep (<see cref="NewKey"/>: a key given now;
    /// <see cref="Token"/>), each wiped once sealed. <see cref="Opened"/>: the team's deploy key, opened for the check only.
    /// </summary>
    private sealed record Connection(string Auth, GitAccess? Access, string? PublicKey, string? HostKeys, byte[]? NewKey, byte[]? Token, string? Username, byte[]? Opened)
    {
        public void Wipe()
        {
            foreach (var secret in (byte[]?[])[NewKey, Token, Opened])
            {
                if (secret is not null)
                {
                    CryptographicOperations.ZeroMemory(secret);
                }
            }
        }
    }

    [GeneratedRegex(@"^[A-Za-z0-9._@-]{1,100}$")]
    private static partial Regex UserName();
}
