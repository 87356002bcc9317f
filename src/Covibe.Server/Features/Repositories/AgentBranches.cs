using System.Text;
using Covibe.Server.Features.Git;
using Covibe.Server.Http;

namespace Covibe.Server.Features.Repositories;

/// <summary>
/// Where an agent on the team's repository starts: <see cref="WorkBranch"/> (<c>covibe/&lt;short id&gt;-&lt;task&gt;</c>) from
/// <see cref="BaseCommit"/>, the newest commit of <see cref="BaseBranch"/>, in a work tree borrowing <see cref="Mirror"/>.
/// </summary>
public sealed record AgentBranch(string RepositoryUrl, string BaseBranch, string BaseCommit, string WorkBranch, string Mirror);

/// <summary>
/// Starts agents' branches on the team's repository: the base branch fetched into the team's mirror now (so each starts
/// from its newest commit), and a reference in the mirror that keeps the agent's starting point from being pruned.
/// </summary>
public sealed class AgentBranches(RepositoryAccess access, TeamMirrors mirrors, GitMirror git)
{
    private const int SlugLength = 40;

    /// <summary>The team's repository, when it has one connected.</summary>
    public Task<TeamRepository?> ConnectedAsync(string teamId, CancellationToken cancellationToken) => access.ConnectedAsync(teamId, cancellationToken);

    public async Task<AgentBranch> StartAsync(TeamRepository repository, string agentId, string task, string? baseBranch, CancellationToken cancellationToken)
    {
        var branch = baseBranch ?? repository.Branch ?? throw new InvalidOperationException("A connected repository has a base branch.");
        string commit;
        try
        {
            commit = await mirrors.FetchAsync(repository, branch, cancellationToken);
            await git.UpdateRefAsync(mirrors.PathOf(repository.TeamId), StartRef(agentId), commit, cancellationToken);
        }
        catch (GitMirrorException e)
        {
            throw new RequestRefusedException(Refusal.Unreachable, "repository-unreachable", "The team's repository could not be reached",
                $"The branch '{branch}' of {repository.Url} could not be fetched: {e.Message}");
        }
        return new AgentBranch(repository.Url!, branch, commit, BranchName(agentId, task), mirrors.PathOf(repository.TeamId));
    }

    /// <summary>The reference in the team's mirror that keeps where the agent started.</summary>
    public static string StartRef(string agentId) => $"refs/covibe/agents/{agentId}/start";

    /// <summary><c>covibe/&lt;first 8 of the id&gt;-&lt;the task's words&gt;</c>: lower-case letters and digits joined by '-', at most 40 of them.</summary>
    public static string BranchName(string agentId, string task)
    {
        var slug = new StringBuilder();
        foreach (var c in task.ToLowerInvariant())
        {
            if (slug.Length >= SlugLength)
            {
                break;
            }
            if (c is >= 'a' and <= 'z' or >= '0' and <= '9')
            {
                slug.Append(c);
            }
            else if (slug.Length > 0 && slug[^1] != '-')
            {
                slug.Append('-');
            }
        }
        var words = slug.ToString().Trim('-');
        return $"covibe/{agentId[..Math.Min(8, agentId.Length)]}-{(words.Length == 0 ? "agent" : words)}";
    }
}
