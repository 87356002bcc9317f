using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Agents;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Git;
using Covibe.Server.Features.Machines;
using Covibe.Server.Features.Repositories;
using Covibe.Server.Http;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Changes;

/// <summary>
/// Agents' work trees kept on this server (issue 25, point 5): after an agent ends, its branch and tree stay until merged or
/// discarded; its owner discards them (the tree removed, its branch and starting point taken out of the team's mirror);
/// the team's owner sees the disk they take.
/// </summary>
public sealed class AgentTrees(
    IDbContextFactory<CovibeDb> dbs, Workspaces workspaces, TeamMirrors mirrors, GitMirror git, AgentEvents events, AgentChanges changes, IOptions<RepositoriesOptions> options,
    TimeProvider time, ILogger<AgentTrees> logger)
{
    public async Task<AgentDto> DiscardAsync(Caller caller, string agentId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var agent = await db.Agents.SingleOrDefaultAsync(a => a.Id == agentId && a.TeamId == caller.TeamId, cancellationToken)
            ?? throw RequestRefusedException.NotFound("Agent", $"Your team has no agent {agentId}.");
        if (agent.UserId != caller.UserId)
        {
            throw RequestRefusedException.Forbidden("Only the agent's owner can discard its work.");
        }
        if (agent.WorkBranch is null)
        {
            throw new RequestRefusedException(Refusal.Conflict, "no-work-tree", "The agent has no branch of its own", "This agent does not work on the team's repository: there is nothing to discard.");
        }
        if (agent.TreeDiscardedAt is not null)
        {
            throw new RequestRefusedException(Refusal.Conflict, "tree-discarded", "Already discarded", $"The work of agent {agentId} was discarded already.");
        }
        if (!AgentStatuses.IsFinal(agent.Status))
        {
            throw new RequestRefusedException(Refusal.Conflict, "agent-running", "The agent is still running", "Stop the agent first (kill it, or let it finish); then discard its work.");
        }
        // Marked first: a discard cut short is finished by the next (the tree and references go whether or not they are there).
        agent.TreeDiscardedAt = time.GetUtcNow().UtcDateTime;
        await db.SaveChangesAsync(cancellationToken);
        RemoveTree(Path.Combine(workspaces.Base, agent.TeamId, agent.WorkingDirectory));
        changes.RemoveScratch(agent.Id);
        try
        {
            await changes.RemoveThereAsync(agent, cancellationToken);
        }
        catch (Exception e) when (e is IOException or Covibe.Execution.Ssh.SshException)
        {
            ChangesLog.DiscardIncomplete(logger, agent.Id, $"its tree on the VM is left: {e.Message}");
        }
        var mirror = mirrors.PathOf(agent.TeamId);
        if (Directory.Exists(mirror))
        {
            foreach (var reference in (string[])[$"refs/heads/{agent.WorkBranch}", AgentBranches.StartRef(agent.Id)])
            {
                try
                {
                    await git.DeleteRefAsync(mirror, reference, cancellationToken);
                }
                catch (GitMirrorException e)
                {
                    ChangesLog.DiscardIncomplete(logger, agent.Id, e.Message);
                }
            }
        }
        ChangesLog.Discarded(logger, agent.Id, agent.WorkBranch, caller.UserId);
        await events.StatusChangedAsync(agent, cancellationToken);
        return events.ToDto(agent, caller.Name, canControl: true);
    }

    /// <summary>The disk the team's repository takes here: its mirror and each kept tree (team owner only).</summary>
    public async Task<TeamWorktreesResponse> DiskAsync(Caller caller, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        if (!await caller.IsTeamOwnerAsync(db, cancellationToken))
        {
            throw RequestRefusedException.Forbidden("Only the team owner sees the disk the team's work takes.");
        }
        var kept = await db.Agents.AsNoTracking()
            .Where(a => a.TeamId == caller.TeamId && a.WorkBranch != null && a.TreeDiscardedAt == null)
            .OrderBy(a => a.CreatedAt)
            .Select(a => new { a.Id, a.WorkBranch, a.Status, a.Task, a.WorkingDirectory })
            .ToListAsync(cancellationToken);
        var trees = kept.Select(a => new WorktreeDto(a.Id, a.WorkBranch!, a.Status, a.Task, Bytes(Path.Combine(workspaces.Base, caller.TeamId, a.WorkingDirectory)))).ToArray();
        var mirror = Bytes(mirrors.PathOf(caller.TeamId));
        return new TeamWorktreesResponse(mirror, trees, mirror + trees.Sum(t => t.Bytes), options.Value.MaxWorktreesPerTeam);
    }

    /// <summary>Removes a tree the agent may have filled with links: a link is removed, never followed (the tree itself may be one).</summary>
    private static void RemoveTree(string path)
    {
        var info = new DirectoryInfo(path);
        if (info.LinkTarget is not null)
        {
            File.Delete(path);
        }
        else if (info.Exists)
        {
            info.Delete(recursive: true);
        }
    }

    /// <summary>The bytes of the files under <paramref name="path"/>, links not followed.</summary>
    private static long Bytes(string path)
    {
        var info = new DirectoryInfo(path);
        if (!info.Exists || info.LinkTarget is not null)
        {
            return 0;
        }
        return info.EnumerateFiles("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint, IgnoreInaccessible = true })
            .Sum(f => f.Length);
    }
}
