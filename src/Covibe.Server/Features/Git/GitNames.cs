using System.Text.RegularExpressions;

namespace Covibe.Server.Features.Git;

/// <summary>Who fetches a repository, which decides the addresses that may be given for it.</summary>
public enum RepositoryFetcher
{
    /// <summary>An agent clones it where it runs, with that machine's credentials: any git address (https, ssh, git@host:path, file).</summary>
    Agent,
    /// <summary>The server itself (the shared preview, a box's mirror): https or http only, never with credentials in the address.</summary>
    Server,
    /// <summary>The server, and the operator lets it read repositories on this machine's disk too.</summary>
    ServerOrThisDisk,
}

/// <summary>What Covibe accepts as a repository URL and a branch name before anything reaches git (never as an option).</summary>
public static partial class GitNames
{
    /// <summary>
    /// Why <paramref name="url"/> is not a repository address Covibe will use, or null: the one rule for every feature. Its
    /// shape is the same for all (no leading <c>-</c> that git would read as an option, no white space or control
    /// characters, at most 2,000 characters); which addresses go depends on <paramref name="fetcher"/>.
    /// <paramref name="what"/> names who follows it, in the messages of the server's rules.
    /// </summary>
    public static string? RepositoryProblem(string url, RepositoryFetcher fetcher, string what = "The preview")
    {
        if (string.IsNullOrWhiteSpace(url) || url.Length > 2000 || url.StartsWith('-') || url.Any(c => char.IsWhiteSpace(c) || char.IsControl(c)))
        {
            return "Give the repository's address, like https://github.com/owner/app.git.";
        }
        if (fetcher == RepositoryFetcher.Agent)
        {
            return RepositoryUrl().IsMatch(url) ? null : "Give a git address such as https://github.com/org/repo.git or git@github.com:org/repo.git.";
        }
        var allowLocal = fetcher == RepositoryFetcher.ServerOrThisDisk;
        if (Uri.TryCreate(url, UriKind.Absolute, out var uri))
        {
            if (uri.Scheme is "https" or "http")
            {
                return uri.UserInfo.Length > 0
                    ? $"Leave credentials out of the repository's address: addresses are shown and logged. {what} follows public repositories (https)."
                    : null;
            }
            if (uri.Scheme == "file" && allowLocal)
            {
                return null;
            }
        }
        if (allowLocal && Path.IsPathFullyQualified(url))
        {
            return null;
        }
        return $"{what} follows repositories over https (like https://github.com/owner/app.git)"
            + (allowLocal ? " or on this machine's disk." : ".");
    }

    public static bool IsBranchName(string branch) =>
        branch.Length <= 200 && !branch.StartsWith('-') && !branch.Contains("..", StringComparison.Ordinal)
        && !branch.EndsWith('/') && !branch.EndsWith(".lock", StringComparison.Ordinal) && BranchName().IsMatch(branch);

    [GeneratedRegex(@"^((https?|ssh|git|file)://[^\s]+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9._/~-]+)$")]
    private static partial Regex RepositoryUrl();

    [GeneratedRegex(@"^[A-Za-z0-9._/-]+$")]
    private static partial Regex BranchName();
}
