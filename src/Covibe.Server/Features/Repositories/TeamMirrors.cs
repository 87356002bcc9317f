using System.Collections.Concurrent;
using Covibe.Server.Features.Git;
using Covibe.Server.Hosting;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Repositories;

/// <summary>
/// Each team's mirror of its repository on this machine (<c>&lt;data&gt;/repositories/&lt;team&gt;/mirror.git</c>, bare): the
/// server fetches into it with the team's credential, and agents' work trees borrow its objects, shown to them read-only.
/// Nothing of the credential is in it (it goes to each git process alone), so what agents can read holds no secret.
/// </summary>
public sealed class TeamMirrors(GitMirror git, RepositoryAccess access, IOptions<ServerOptions> server)
{
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _gates = new();

    private string Root => Path.Combine(server.Value.DataDirectory, "repositories");

    public string PathOf(string teamId) => Path.Combine(Root, teamId, "mirror.git");

    /// <summary>Fetches <paramref name="branch"/> of the team's repository into its mirror, one fetch per team at a time: the commit it points to.</summary>
    public async Task<string> FetchAsync(TeamRepository repository, string branch, CancellationToken cancellationToken)
    {
        var mirror = PathOf(repository.TeamId);
        var gate = _gates.GetOrAdd(repository.TeamId, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken);
        try
        {
            ServerOptions.EnsureDirectory(server.Value.DataDirectory);
            ServerOptions.EnsureDirectory(Root);
            ServerOptions.EnsureDirectory(Path.GetDirectoryName(mirror)!);
            var commit = await git.FetchAsync(mirror, await access.RemoteAsync(repository, cancellationToken), branch, TimeSpan.FromMinutes(10), cancellationToken);
            // Agents read it (shown read-only at this path) as their own user; the directories around it stay the server's alone.
            File.SetUnixFileMode(mirror, (UnixFileMode)0b111_101_101);
            return commit;
        }
        finally
        {
            gate.Release();
        }
    }
}
