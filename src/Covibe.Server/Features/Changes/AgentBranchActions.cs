using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Agents;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Chat;
using Covibe.Server.Features.Events;
using Covibe.Server.Features.Git;
using Covibe.Server.Features.Previews;
using Covibe.Server.Features.Repositories;
using Covibe.Server.Http;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Changes;

/// <summary>
/// What whoever controls an agent does with its branch (issue 25, point 4: its owner, and whom it was handed to): commit the work as it is in
/// its tree (the member the author, the agent a co-author), and push the branch to the team's repository with the team's
/// credential, which the agent never has. Each is told to the team with who did it.
/// </summary>
public sealed partial class AgentBranchActions(
    IDbContextFactory<CovibeDb> dbs, AgentChanges changes, AgentControl control, TeamMirrors mirrors, GitMirror git, RepositoryAccess access, PreviewService previews, ChatService chat, ITeamEvents events,
    ILogger<AgentBranchActions> logger)
{
    public const int MaxMessageLength = 10_000;

    public async Task<AgentBranchResponse> CommitAsync(Caller caller, string agentId, string? message, CancellationToken cancellationToken)
    {
        var agent = await ControlledAsync(caller, agentId, "commit its work", cancellationToken);
        if (message is { Length: > MaxMessageLength } || (message is not null && string.IsNullOrWhiteSpace(message)))
        {
            throw RequestRefusedException.Field("message", $"Give a commit message of 1 to {MaxMessageLength} characters (or none, for the one proposed).");
        }
        var (name, email) = await AuthorAsync(caller, cancellationToken);
        var text = (message ?? Proposed(agent)).Replace("\r\n", "\n", StringComparison.Ordinal).Trim() + $"\n\nCo-authored-by: {CoAuthor(agent)}";
        var mirror = mirrors.PathOf(agent.TeamId);
        var workRef = $"refs/heads/{agent.WorkBranch}";
        var previous = await git.RefAsync(mirror, workRef, cancellationToken);
        // After an update from base that left conflicts, the work resolved is committed as the merge of the base.
        string[] parents = agent.MergeParent is { } merging ? [previous ?? agent.BaseCommit!, merging] : [previous ?? agent.BaseCommit!];
        var commit = await changes.CommitAsync(agent, parents, text, (name, email), cancellationToken)
            ?? throw new RequestRefusedException(Refusal.Conflict, "nothing-to-commit", "Nothing to commit",
                $"The agent's tree is the same as its branch {agent.WorkBranch} already holds.");
        var (source, temporary) = await changes.CommittedAsync(agent, parents, cancellationToken);
        try
        {
            await git.TakeAsync(mirror, source, "refs/heads/commit", workRef, previous, cancellationToken);
        }
        catch (GitMirrorException e)
        {
            throw new RequestRefusedException(Refusal.Conflict, "branch-moved", "The branch moved meanwhile",
                $"The branch {agent.WorkBranch} changed while committing (another commit at the same moment?): nothing was committed. Try again. ({e.Message})");
        }
        finally
        {
            if (temporary)
            {
                File.Delete(source);
            }
        }
        if (agent.MergeParent is not null)
        {
            await RecordAsync(agent.Id, a => a.MergeParent = null, cancellationToken);
        }
        ChangesLog.Committed(logger, agent.Id, agent.WorkBranch!, commit, caller.UserId);
        var subject = text.Split('\n')[0];
        await TellAsync(caller, agent, new AgentBranchMessage(agent.Id, "commit", caller.Name, agent.WorkBranch!, commit, subject, null),
            $"committed {commit[..7]} on {agent.WorkBranch}: {subject}");
        return new AgentBranchResponse(agent.Id, agent.WorkBranch!, commit, text, null);
    }

    public async Task<AgentBranchResponse> PushAsync(Caller caller, string agentId, CancellationToken cancellationToken)
    {
        var agent = await ControlledAsync(caller, agentId, "push its branch", cancellationToken);
        var mirror = mirrors.PathOf(agent.TeamId);
        var workRef = $"refs/heads/{agent.WorkBranch}";
        var commit = await git.RefAsync(mirror, workRef, cancellationToken)
            ?? throw new RequestRefusedException(Refusal.Conflict, "nothing-to-push", "Nothing to push", $"Commit the agent's work first: its branch {agent.WorkBranch} has no commit of its own yet.");
        var repository = await access.ConnectedAsync(agent.TeamId, cancellationToken)
            ?? throw new RequestRefusedException(Refusal.Conflict, "no-repository", "No repository", "The team's repository was disconnected: its owner connects it again first.");
        try
        {
            await git.PushAsync(mirror, await access.RemoteAsync(repository, cancellationToken), workRef, agent.WorkBranch!, cancellationToken);
        }
        catch (GitMirrorException e)
        {
            ChangesLog.PushRefused(logger, agent.Id, agent.WorkBranch!, e.Message);
            throw new RequestRefusedException(Refusal.Unprocessable, "push-refused", "The repository refused the push",
                $"{Refused(e.Message)} The branch {agent.WorkBranch} is kept here as it was; push again once that is fixed.");
        }
        var link = ForgeLinks.PullRequest(repository.Url!, agent.Branch ?? repository.Branch!, agent.WorkBranch!);
        ChangesLog.Pushed(logger, agent.Id, agent.WorkBranch!, commit, caller.UserId);
        await TellAsync(caller, agent, new AgentBranchMessage(agent.Id, "push", caller.Name, agent.WorkBranch!, commit, null, link),
            $"pushed {agent.WorkBranch} at {commit[..7]}{(link is null ? "" : $": open a pull request at {link}")}");
        return new AgentBranchResponse(agent.Id, agent.WorkBranch!, commit, null, link);
    }

    /// <summary>The team hears what was done to the agent's branch (<c>agent_branch</c>), and it joins the team's chat stream with who did it.</summary>
    private async Task TellAsync(Caller caller, Agent agent, AgentBranchMessage message, string activity)
    {
        events.Publish(agent.TeamId, message);
        await chat.RecordActivityAsync(agent.TeamId, caller.UserId, caller.Name, activity, CancellationToken.None);
    }

    /// <summary>The agent, when the caller controls it (<see cref="AgentControl"/>) and its work is still there.</summary>
    private async Task<Agent> ControlledAsync(Caller caller, string agentId, string what, CancellationToken cancellationToken)
    {
        var agent = await changes.FindAsync(caller, agentId, cancellationToken);
        return await control.AllowsAsync(agent, caller.UserId, cancellationToken)
            ? agent
            : throw RequestRefusedException.Forbidden($"Only whoever controls the agent (its owner, and whom they handed it to) can {what}.");
    }

    private async Task<(string Name, string Email)> AuthorAsync(Caller caller, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var user = await db.Users.AsNoTracking().Where(u => u.Id == caller.UserId).Select(u => new { u.Name, u.Email }).SingleAsync(cancellationToken);
        return (user.Name, user.Email);
    }

    /// <summary>
    /// The message proposed for an agent's work: its task's first line as the subject; below it the agent's final summary
    /// (what it says it did) when it gave one, and the whole task when that is longer than its first line.
    /// </summary>
    public static string Proposed(Agent agent)
    {
        var task = agent.Task.Trim().Replace("\r\n", "\n", StringComparison.Ordinal);
        var subject = Subject(agent);
        var body = new List<string>();
        if (agent.Summary?.Trim() is { Length: > 0 } summary)
        {
            body.Add(summary.Replace("\r\n", "\n", StringComparison.Ordinal));
        }
        if (subject != task)
        {
            body.Add(body.Count > 0 ? $"Task:\n{task}" : task);
        }
        return body.Count == 0 ? subject : $"{subject}\n\n{string.Join("\n\n", body)}";
    }

    /// <summary>The task's first line, at most 72 characters.</summary>
    private static string Subject(Agent agent)
    {
        var first = agent.Task.Trim().Split('\n')[0].Trim();
        return first.Length <= 72 ? first : first[..69].TrimEnd() + "...";
    }

    private static string CoAuthor(Agent agent) => agent.Type.StartsWith("claude", StringComparison.Ordinal)
        ? "Claude <noreply@anthropic.com>"
        : $"Covibe agent ({agent.Type}) <agent-{agent.Id[..8]}@covibe.invalid>";

    private static string Refused(string error) =>
        error.Contains("read only", StringComparison.OrdinalIgnoreCase) || error.Contains("read-only", StringComparison.OrdinalIgnoreCase)
            ? $"The team's key or token may read but not write: give it write access. ({error})"
            : error.Contains("protected", StringComparison.OrdinalIgnoreCase) || error.Contains("declined", StringComparison.OrdinalIgnoreCase)
                ? $"The repository does not take pushes to this branch (a protected branch, or a hook declined it). ({error})"
                : $"The push failed: {error}";
}
