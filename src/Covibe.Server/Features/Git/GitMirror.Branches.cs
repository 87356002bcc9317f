namespace Covibe.Server.Features.Git;

public sealed partial class GitMirror
{
    /// <summary>The commit <paramref name="reference"/> of the mirror points to, or null when there is no such reference.</summary>
    public async Task<string?> RefAsync(string mirror, string reference, CancellationToken cancellationToken)
    {
        try
        {
            var commit = (await RunAsync(["rev-parse", "--verify", "--quiet", reference + "^{commit}"], mirror, null, TimeSpan.FromSeconds(30), cancellationToken)).Trim();
            return Sha().IsMatch(commit) ? commit : null;
        }
        catch (GitMirrorException)
        {
            return null;
        }
    }

    /// <summary>
    /// Takes <paramref name="sourceRef"/> of the server's own repository <paramref name="source"/> (owned by the sandbox's user)
    /// into the mirror as <paramref name="targetRef"/>, only if that still points to <paramref name="expected"/> (null: does not
    /// exist yet): objects checked as they come, the reference moved in one step or not at all.
    /// </summary>
    public async Task TakeAsync(string mirror, string source, string sourceRef, string targetRef, string? expected, CancellationToken cancellationToken)
    {
        var incoming = $"refs/covibe/incoming/{Guid.NewGuid():N}";
        // The source belongs to the sandbox's user: trusted for this one fetch, by its upload-pack too, which reads global
        // configuration only (this file, instead of none).
        var trust = Path.Combine(home, $"trust-{Guid.NewGuid():N}");
        await File.WriteAllTextAsync(trust, $"[safe]\n\tdirectory = {source}\n", cancellationToken);
        try
        {
            await RunAsync(["fetch", "--quiet", "--no-tags", "--", source, $"+{sourceRef}:{incoming}"], mirror,
                new GitRemote(source, AllowLocal: true, new GitAccess(new Dictionary<string, string> { ["GIT_CONFIG_GLOBAL"] = trust }, overSsh: false)),
                TimeSpan.FromMinutes(5), cancellationToken);
        }
        finally
        {
            File.Delete(trust);
        }
        try
        {
            var commit = await RefAsync(mirror, incoming, cancellationToken) ?? throw new GitMirrorException("The new commit did not arrive.");
            await RunAsync(["update-ref", targetRef, commit, expected ?? new string('0', 40)], mirror, null, TimeSpan.FromSeconds(30), cancellationToken);
        }
        finally
        {
            await DeleteRefAsync(mirror, incoming, CancellationToken.None);
        }
    }

    /// <summary>Pushes <paramref name="localRef"/> of the mirror to the branch <paramref name="branch"/> of <paramref name="remote"/>.</summary>
    public async Task PushAsync(string mirror, GitRemote remote, string localRef, string branch, CancellationToken cancellationToken) =>
        await RunAsync(["push", "--quiet", "--", remote.Url, $"{localRef}:refs/heads/{branch}"], mirror, remote, TimeSpan.FromMinutes(10), cancellationToken);
}
