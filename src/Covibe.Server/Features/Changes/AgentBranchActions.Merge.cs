using System.Collections.Concurrent;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Agents;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Git;
using Covibe.Server.Features.Repositories;
using Covibe.Server.Http;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Changes;

/// <summary>
/// Merging an agent's branch into its base branch, and bringing the base into it (issue 25, point 4). Both are worked out
/// in the team's mirror without a work tree (<c>git merge-tree --write-tree</c>): a merge is pushed to the team's repository
/// as a fast-forward of the base (a base that moved meanwhile is refused by the forge, nothing changed) before anything here
/// moves, so a server killed at any point leaves the branch, the mirror and the repository as they were, or merged.
/// </summary>
public sealed partial class AgentBranchActions
{
    private static readonly ConcurrentDictionary<string, SemaphoreSlim> TeamGates = new();

    private static async Task<IDisposable> TeamLockAsync(string teamId, CancellationToken cancellationToken)
    {
        var gate = TeamGates.GetOrAdd(teamId, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken);
        return new Held(gate);
    }

    private sealed class Held(SemaphoreSlim gate) : IDisposable
    {
        public void Dispose() => gate.Release();
    }

    /// <summary>Merges the agent's committed branch into its base branch in the team's repository, and deploys the preview if it follows that branch.</summary>
    public async Task<AgentMergeResponse> MergeAsync(Caller caller, string agentId, CancellationToken cancellationToken)
    {
        var agent = await ControlledAsync(caller, agentId, "merge its branch", cancellationToken);
        var (repository, remote, baseBranch, mirror) = await RepositoryAsync(agent, cancellationToken);
        // One merge or update of the team's repository at a time on this node (the forge's fast-forward check covers several).
        using var held = await TeamLockAsync(agent.TeamId, cancellationToken);
        var work = await git.RefAsync(mirror, $"refs/heads/{agent.WorkBranch}", cancellationToken)
            ?? throw new RequestRefusedException(Refusal.Conflict, "nothing-to-merge", "Nothing to merge",
                $"Commit the agent's work first: its branch {agent.WorkBranch} has no commit of its own yet.");
        var head = await FetchBaseAsync(mirror, remote, baseBranch, cancellationToken);
        if (await git.IsAncestorAsync(mirror, work, head, cancellationToken))
        {
            throw new RequestRefusedException(Refusal.Conflict, "already-merged", "Already merged",
                $"{baseBranch} already holds everything on {agent.WorkBranch} (at {work[..7]}).");
        }
        var fastForward = await git.IsAncestorAsync(mirror, head, work, cancellationToken);
        string merged;
        if (fastForward)
        {
            merged = work;
        }
        else
        {
            var result = await git.MergeTreeAsync(mirror, head, work, cancellationToken);
            if (!result.Clean)
            {
                var refused = new RequestRefusedException(Refusal.Conflict, "merge-conflict", "The branches conflict",
                    $"{agent.WorkBranch} and {baseBranch} both changed {Files(result.Conflicts)}: nothing was merged. " +
                    $"Update the agent's branch from {baseBranch}, resolve the conflicts in its tree (the agent can), commit, and merge again.");
                refused.Extensions["files"] = result.Conflicts;
                throw refused;
            }
            merged = await git.CommitTreeAsync(mirror, result.Tree, [head, work],
                $"Merge branch '{agent.WorkBranch}' into {baseBranch}\n\n{Subject(agent)}", await AuthorAsync(caller, cancellationToken), cancellationToken);
        }
        await PushBaseAsync(agent, mirror, remote, merged, baseBranch, cancellationToken);
        await git.UpdateRefAsync(mirror, $"refs/heads/{baseBranch}", merged, cancellationToken);
        var preview = await previews.PushedAsync(agent.TeamId, repository.Url!, baseBranch, merged, cancellationToken);
        ChangesLog.Merged(logger, agent.Id, agent.WorkBranch!, baseBranch, merged, caller.UserId);
        await TellAsync(caller, agent, new AgentBranchMessage(agent.Id, "merge", caller.Name, agent.WorkBranch!, merged,
            $"merged into {baseBranch}{(fastForward ? " (fast-forward)" : "")}{(preview ? "; the preview is deploying it" : "")}", null),
            $"merged {agent.WorkBranch} into {baseBranch} at {merged[..7]}{(fastForward ? " (fast-forward)" : "")}{(preview ? "; the preview is deploying it" : "")}");
        return new AgentMergeResponse(agent.Id, agent.WorkBranch!, baseBranch, merged, fastForward, preview);
    }

    /// <summary>
    /// Brings the base branch's newest commit into the agent's branch and tree: a merge commit when it merges cleanly; else
    /// the conflicted files with markers in its tree, to resolve and commit (the commit then merges the base).
    /// </summary>
    public async Task<AgentUpdateResponse> UpdateAsync(Caller caller, string agentId, CancellationToken cancellationToken)
    {
        var agent = await ControlledAsync(caller, agentId, "update its branch", cancellationToken);
        var (_, remote, baseBranch, mirror) = await RepositoryAsync(agent, cancellationToken);
        // One merge or update of the team's repository at a time on this node (the forge's fast-forward check covers several).
        using var held = await TeamLockAsync(agent.TeamId, cancellationToken);
        var workRef = $"refs/heads/{agent.WorkBranch}";
        var previous = await git.RefAsync(mirror, workRef, cancellationToken);
        var work = previous ?? agent.BaseCommit!;
        var head = await FetchBaseAsync(mirror, remote, baseBranch, cancellationToken);
        if (await git.IsAncestorAsync(mirror, head, work, cancellationToken))
        {
            throw new RequestRefusedException(Refusal.Conflict, "up-to-date", "Already up to date",
                $"{agent.WorkBranch} already holds everything on {baseBranch} (at {head[..7]}).");
        }
        var result = await git.MergeTreeAsync(mirror, work, head, cancellationToken);
        var author = await AuthorAsync(caller, cancellationToken);
        var commit = result.Clean
            ? await git.CommitTreeAsync(mirror, result.Tree, [work, head], $"Merge branch '{baseBranch}' into {agent.WorkBranch}", author, cancellationToken)
            : null;
        var target = commit ?? result.Tree;
        if (changes.Elsewhere(agent))
        {
            // Its tree is on a VM: what it lacks goes there first (conflicts travel as a commit of the marked tree, never kept).
            target = commit ?? await git.CommitTreeAsync(mirror, result.Tree, [work, head], $"Conflicts to resolve: {baseBranch} into {agent.WorkBranch}", author,
                cancellationToken);
            var reference = $"{AgentBranches.StartRef(agent.Id)[..^"start".Length]}update";
            await git.UpdateRefAsync(mirror, reference, target, cancellationToken);
            try
            {
                // Everything since where it started: its own commits live in the VM's scratch repository, not in its tree's.
                await changes.SendThereAsync(agent, reference, target, agent.BaseCommit!, cancellationToken);
            }
            finally
            {
                await git.DeleteRefAsync(mirror, reference, CancellationToken.None);
            }
        }
        // Told before the tree moves: if the server stops before the branch does, the next commit still merges the base.
        await RecordAsync(agent.Id, a => a.MergeParent = head, cancellationToken);
        try
        {
            await changes.UpdateTreeAsync(agent, work, target, head, merged: commit is not null, cancellationToken);
        }
        catch
        {
            await RecordAsync(agent.Id, a => a.MergeParent = agent.MergeParent, CancellationToken.None);
            throw;
        }
        if (commit is not null)
        {
            await git.UpdateRefAsync(mirror, workRef, commit, cancellationToken);
            await RecordAsync(agent.Id, a => a.MergeParent = null, cancellationToken);
        }
        ChangesLog.Updated(logger, agent.Id, agent.WorkBranch!, head, result.Conflicts.Length, caller.UserId);
        var said = result.Clean ? $"updated from {baseBranch}" : $"updated from {baseBranch}, with conflicts to resolve in {Files(result.Conflicts)}";
        await TellAsync(caller, agent, new AgentBranchMessage(agent.Id, "update", caller.Name, agent.WorkBranch!, commit ?? work, said, null),
            $"{said.Replace("updated", $"updated {agent.WorkBranch}", StringComparison.Ordinal)}");
        return new AgentUpdateResponse(agent.Id, agent.WorkBranch!, head, commit, result.Conflicts);
    }

    private async Task<(TeamRepository Repository, GitRemote Remote, string BaseBranch, string Mirror)> RepositoryAsync(Agent agent, CancellationToken cancellationToken)
    {
        var repository = await access.ConnectedAsync(agent.TeamId, cancellationToken)
            ?? throw new RequestRefusedException(Refusal.Conflict, "no-repository", "No repository", "The team's repository was disconnected: its owner connects it again first.");
        return (repository, await access.RemoteAsync(repository, cancellationToken), agent.Branch ?? repository.Branch!, mirrors.PathOf(agent.TeamId));
    }

    private async Task<string> FetchBaseAsync(string mirror, GitRemote remote, string baseBranch, CancellationToken cancellationToken)
    {
        try
        {
            return await git.FetchAsync(mirror, remote, baseBranch, TimeSpan.FromMinutes(5), cancellationToken);
        }
        catch (GitMirrorException e)
        {
            throw new RequestRefusedException(Refusal.Unreachable, "repository-unreachable", "The repository could not be read",
                $"The newest {baseBranch} could not be fetched: {e.Message}");
        }
    }

    /// <summary>Moves the repository's base branch to <paramref name="merged"/>, only as a fast-forward of what it was.</summary>
    private async Task PushBaseAsync(Agent agent, string mirror, GitRemote remote, string merged, string baseBranch, CancellationToken cancellationToken)
    {
        try
        {
            await git.PushAsync(mirror, remote, merged, baseBranch, cancellationToken);
        }
        catch (GitMirrorException e) when (GitMirror.BehindRemote(e))
        {
            throw new RequestRefusedException(Refusal.Conflict, "base-moved", "The base branch moved meanwhile",
                $"{baseBranch} changed in the repository while merging: nothing was merged. Merge again to merge into its newest commit.");
        }
        catch (GitMirrorException e)
        {
            ChangesLog.PushRefused(logger, agent.Id, baseBranch, e.Message);
            throw new RequestRefusedException(Refusal.Unprocessable, "push-refused", "The repository refused the merge",
                $"{Refused(e.Message)} Nothing was merged; {agent.WorkBranch} is kept as it was.");
        }
    }

    private async Task RecordAsync(string agentId, Action<Agent> change, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var agent = await db.Agents.SingleAsync(a => a.Id == agentId, cancellationToken);
        change(agent);
        await db.SaveChangesAsync(cancellationToken);
    }

    private static string Files(string[] files) =>
        files.Length <= 5 ? string.Join(", ", files) : $"{string.Join(", ", files.Take(5))} and {files.Length - 5} more";
}
