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

    /// <summary>Whether <paramref name="ancestor"/> is <paramref name="commit"/> or one of its ancestors.</summary>
    public async Task<bool> IsAncestorAsync(string mirror, string ancestor, string commit, CancellationToken cancellationToken)
    {
        var (code, _, errors) = await RunCodeAsync(["merge-base", "--is-ancestor", ancestor, commit], mirror, null, TimeSpan.FromSeconds(60), cancellationToken);
        return code switch
        {
            0 => true,
            1 => false,
            _ => throw new GitMirrorException(Explain(errors, "git merge-base")),
        };
    }

    /// <summary>
    /// Merges <paramref name="theirs"/> into <paramref name="ours"/> without a work tree (<c>git merge-tree --write-tree</c>):
    /// the tree of the result, and the files both changed in ways that conflict (none: a clean merge). When there are
    /// conflicts the tree holds those files with conflict markers, as <c>git merge</c> leaves them.
    /// </summary>
    public async Task<MergeResult> MergeTreeAsync(string mirror, string ours, string theirs, CancellationToken cancellationToken)
    {
        var (code, output, errors) = await RunCodeAsync(["merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", ours, theirs], mirror, null,
            TimeSpan.FromMinutes(2), cancellationToken);
        var parts = output.Split('\0');
        if (code is not (0 or 1) || !Sha().IsMatch(parts[0]))
        {
            throw new GitMirrorException(Explain(errors, "git merge-tree"));
        }
        var conflicts = code == 0 ? [] : parts.Skip(1).TakeWhile(p => p.Length > 0).Distinct(StringComparer.Ordinal).ToArray();
        return new MergeResult(parts[0], conflicts);
    }

    /// <summary>A commit of <paramref name="tree"/> on <paramref name="parents"/>, by <paramref name="author"/> (also its committer).</summary>
    public async Task<string> CommitTreeAsync(string mirror, string tree, IReadOnlyList<string> parents, string message, (string Name, string Email) author,
        CancellationToken cancellationToken)
    {
        List<string> args = ["commit-tree", tree, "-m", message];
        foreach (var parent in parents)
        {
            args.AddRange(["-p", parent]);
        }
        var commit = (await RunAsync([.. args], mirror, null, TimeSpan.FromSeconds(60), cancellationToken, new Dictionary<string, string>
        {
            ["GIT_AUTHOR_NAME"] = author.Name, ["GIT_AUTHOR_EMAIL"] = author.Email,
            ["GIT_COMMITTER_NAME"] = author.Name, ["GIT_COMMITTER_EMAIL"] = author.Email,
        })).Trim();
        return Sha().IsMatch(commit) ? commit : throw new GitMirrorException("git commit-tree made no commit.");
    }

    /// <summary>Whether a push failed only because the branch moved on the remote (not a fast-forward of it any more).</summary>
    public static bool BehindRemote(GitMirrorException e) =>
        e.Message.Contains("(fetch first)", StringComparison.Ordinal) || e.Message.Contains("(non-fast-forward)", StringComparison.Ordinal);
}

/// <summary>What a merge without a work tree made: its tree, and the files in conflict (none when it merged cleanly).</summary>
public sealed record MergeResult(string Tree, string[] Conflicts)
{
    public bool Clean => Conflicts.Length == 0;
}
