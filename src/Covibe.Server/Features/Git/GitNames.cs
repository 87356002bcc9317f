using System.Text.RegularExpressions;

namespace Covibe.Server.Features.Git;

/// <summary>What Covibe accepts as a repository URL and a branch name before anything reaches git (never as an option).</summary>
public static partial class GitNames
{
    public static bool IsRepositoryUrl(string url) =>
        url.Length <= 2000 && !url.StartsWith('-') && !url.Any(c => char.IsWhiteSpace(c) || char.IsControl(c)) && RepositoryUrl().IsMatch(url);

    public static bool IsBranchName(string branch) =>
        branch.Length <= 200 && !branch.StartsWith('-') && !branch.Contains("..", StringComparison.Ordinal)
        && !branch.EndsWith('/') && !branch.EndsWith(".lock", StringComparison.Ordinal) && BranchName().IsMatch(branch);

    [GeneratedRegex(@"^((https?|ssh|git|file)://[^\s]+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9._/~-]+)$")]
    private static partial Regex RepositoryUrl();

    [GeneratedRegex(@"^[A-Za-z0-9._/-]+$")]
    private static partial Regex BranchName();
}
