namespace Covibe.Server.Features.Git;

/// <summary>Links a forge understands without a token of its own: the page that opens a pull (merge) request for a branch.</summary>
public static class ForgeLinks
{
    /// <summary>For a GitHub or GitLab repository (https or SSH address), the page that proposes merging <paramref name="branch"/> into <paramref name="baseBranch"/>; null for any other host.</summary>
    public static string? PullRequest(string repositoryUrl, string baseBranch, string branch)
    {
        var address = RepositoryAddress.Parse(repositoryUrl, allowLocal: false, out var problem);
        if (problem is not null || address.Transport == RepositoryTransport.Local)
        {
            return null;
        }
        var path = address.Path.Trim('/');
        path = path.EndsWith(".git", StringComparison.Ordinal) ? path[..^4] : path;
        if (path.Length == 0 || path.Contains("..", StringComparison.Ordinal))
        {
            return null;
        }
        return address.Host.ToLowerInvariant() switch
        {
            "github.com" => $"https://github.com/{path}/compare/{Uri.EscapeDataString(baseBranch)}...{Uri.EscapeDataString(branch)}?expand=1",
            "gitlab.com" => $"https://gitlab.com/{path}/-/merge_requests/new?merge_request%5Bsource_branch%5D={Uri.EscapeDataString(branch)}" +
                $"&merge_request%5Btarget_branch%5D={Uri.EscapeDataString(baseBranch)}",
            _ => null,
        };
    }
}
