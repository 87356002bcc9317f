using System.Collections.Concurrent;
using Covibe.Execution;
using Covibe.Execution.Local;
using Covibe.Protocol;
using Covibe.Server.Features.Agents;
using Covibe.Server.Features.Events;
using Covibe.Server.Features.Machines;
using Covibe.Server.Features.Repositories;
using Covibe.Server.Hosting;
using Covibe.Server.Http;
using Covibe.Server.Data;
using Covibe.Server.Features.Auth;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Changes;

/// <summary>
/// What agents on the team's repository have changed (issue 25): read with <see cref="ChangeScript"/> in the sandbox, as
/// the agent's user, with the team's workspace read-only and the mirror beside it (a symlink the agent planted leads
/// nowhere the agent could not go itself); one read at a time per agent; the newest summary told to the team
/// (<c>agent_changes</c>) when it differs from the last one.
/// </summary>
public sealed partial class AgentChanges(
    IDbContextFactory<CovibeDb> dbs, Workspaces workspaces, TeamMirrors mirrors, MachinesFeature.Sandboxes sandboxes, ExecutionBackends backends, ITeamEvents events,
    IOptions<ServerOptions> server,
    TimeProvider time, ILogger<AgentChanges> logger)
{
    public const int MaxFiles = 1000;
    public const int MaxDiffCharacters = 4 * 1024 * 1024;
    private const string ScratchInside = "/covibe-changes";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private readonly ConcurrentDictionary<string, SemaphoreSlim> _gates = new();
    private readonly ConcurrentDictionary<string, AgentChangesDto> _latest = new();

    /// <summary>The caller's team's agent <paramref name="agentId"/> on the team's repository; refused when there is none.</summary>
    public async Task<Agent> FindAsync(Caller caller, string agentId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var agent = await db.Agents.AsNoTracking().SingleOrDefaultAsync(a => a.Id == agentId && a.TeamId == caller.TeamId, cancellationToken)
            ?? throw RequestRefusedException.NotFound("Agent", $"Your team has no agent {agentId}.");
        if (agent.WorkBranch is null)
        {
            throw new RequestRefusedException(Refusal.Conflict, "no-work-tree", "The agent has no branch of its own",
                "This agent does not work on the team's repository (it was given a repository address, a box, or none): its changes are not followed.");
        }
        return agent.TreeDiscardedAt is null
            ? agent
            : throw new RequestRefusedException(Refusal.Conflict, "tree-discarded", "Its work was discarded",
                $"The work of agent {agentId} was discarded by its owner: its tree and branch are gone.");
    }

    /// <summary>The agent's changes now; null when it does not work on the team's repository.</summary>
    public async Task<AgentChangesDto?> ReadAsync(Agent agent, CancellationToken cancellationToken)
    {
        if (agent.WorkBranch is null || agent.BaseCommit is null)
        {
            return null;
        }
        var (code, output, errors) = await RunAsync(agent, "summary", "", MaxDiffCharacters, cancellationToken);
        var summary = code switch
        {
            0 => ChangeScript.Parse(output, MaxFiles),
            ChangeScript.NoTree => new ChangeSummary(null, null, [], false, 0, 0),
            _ => throw Unreadable(agent, code, errors),
        };
        var changes = new AgentChangesDto(agent.Id, agent.WorkBranch, agent.BaseCommit, summary.Head, summary.Branch, summary.Files,
            summary.Added, summary.Removed, summary.Truncated, time.GetUtcNow().UtcDateTime, AgentBranchActions.Proposed(agent), agent.MergeParent);
        return changes;
    }

    /// <summary>The unified diff of the agent's tree against where its branch started: of one file, or of all (cut at 4 MB).</summary>
    public async Task<string?> DiffAsync(Agent agent, string? path, CancellationToken cancellationToken)
    {
        if (agent.WorkBranch is null || agent.BaseCommit is null)
        {
            return null;
        }
        var (code, output, errors) = await RunAsync(agent, "diff", path ?? "", MaxDiffCharacters, cancellationToken);
        return code switch
        {
            0 => output,
            -1 => output + "\n[the diff is longer than 4 MB: read a file's diff by its path]\n",
            ChangeScript.NoTree => "",
            _ => throw Unreadable(agent, code, errors),
        };
    }

    /// <summary>Reads the agent's changes and tells the team when they differ from what it was told last.</summary>
    public async Task RefreshAsync(Agent agent, CancellationToken cancellationToken)
    {
        AgentChangesDto? changes;
        try
        {
            changes = await ReadAsync(agent, cancellationToken);
        }
        catch (RequestRefusedException e)
        {
            ChangesLog.ReadFailed(logger, agent.Id, e.Message);
            return;
        }
        if (changes is null)
        {
            return;
        }
        if (_latest.TryGetValue(agent.Id, out var told) && Same(told, changes))
        {
            return;
        }
        _latest[agent.Id] = changes;
        events.Publish(agent.TeamId, new AgentChangesMessage(agent.Id, changes.Files, changes.Added, changes.Removed, changes.Head, changes.Branch, changes.Truncated));
    }

    /// <summary>The agent's work was discarded: the server's index and objects for reading it go too.</summary>
    public void RemoveScratch(string agentId)
    {
        var scratch = Path.Combine(server.Value.DataDirectory, "changes", agentId);
        if (Directory.Exists(scratch))
        {
            Directory.Delete(scratch, recursive: true);
        }
        Forget(agentId);
        _gates.TryRemove(agentId, out _);
    }

    /// <summary>The agent is no longer watched: what was told of it is forgotten.</summary>
    public void Forget(string agentId) => _latest.TryRemove(agentId, out _);

    private static bool Same(AgentChangesDto a, AgentChangesDto b) =>
        a.Head == b.Head && a.Branch == b.Branch && a.Added == b.Added && a.Removed == b.Removed && a.Files.SequenceEqual(b.Files);

    /// <summary>
    /// Commits the agent's tree as it is now on <paramref name="parents"/> (in the server's scratch repository, as the agent's
    /// user in the sandbox), with <paramref name="message"/> and <paramref name="author"/> (name, email): the new commit,
    /// at the scratch's <c>refs/heads/commit</c>, or null when the tree does not differ from its one parent.
    /// </summary>
    public async Task<string?> CommitAsync(Agent agent, IReadOnlyList<string> parents, string message, (string Name, string Email) author, CancellationToken cancellationToken)
    {
        var (code, output, errors) = await RunAsync(agent, "commit", string.Join(' ', parents), 4096, cancellationToken, new Dictionary<string, string>
        {
            ["COVIBE_MESSAGE"] = message,
            ["GIT_AUTHOR_NAME"] = author.Name, ["GIT_AUTHOR_EMAIL"] = author.Email,
            ["GIT_COMMITTER_NAME"] = author.Name, ["GIT_COMMITTER_EMAIL"] = author.Email,
        });
        return code switch
        {
            0 => output.Trim(),
            ChangeScript.NothingToCommit => null,
            ChangeScript.NoTree => null,
            _ => throw Unreadable(agent, code, errors),
        };
    }

    /// <summary>
    /// Moves the agent's tree, which must hold exactly <paramref name="branchCommit"/> (its work, all committed), to
    /// <paramref name="target"/>: a merge commit of its branch and the base (<paramref name="merged"/>), checked out on its
    /// branch; or a tree whose conflicted files carry markers, with <paramref name="baseCommit"/> left as the merge in
    /// progress. Run as the agent's user with its workspace writable; a file it changed meanwhile stops it, nothing lost.
    /// </summary>
    public async Task UpdateTreeAsync(Agent agent, string branchCommit, string target, string baseCommit, bool merged, CancellationToken cancellationToken)
    {
        var (code, _, errors) = await RunAsync(agent, "update", $"{branchCommit} {target} {baseCommit} {agent.WorkBranch} {(merged ? "merged" : "conflicts")}", 4096,
            cancellationToken, writable: true);
        switch (code)
        {
            case 0:
                return;
            case ChangeScript.NotCommitted:
                throw new RequestRefusedException(Refusal.Conflict, "commit-first", "Commit the agent's work first",
                    $"The agent's tree holds changes not committed on {agent.WorkBranch}: commit them, then update it from its base (an update never mixes uncommitted work with the base's).");
            case ChangeScript.NotMoved:
                throw new RequestRefusedException(Refusal.Conflict, "tree-busy", "The agent's tree changed meanwhile",
                    $"A file of the agent's tree changed while it was being updated, so it was left as it was: try again when the agent is not writing. ({errors.Trim()})");
            case ChangeScript.NoTree:
                throw new RequestRefusedException(Refusal.Conflict, "no-tree", "The agent's tree is not there", $"Agent {agent.Id} has no work tree on this server yet.");
            default:
                throw Unreadable(agent, code, errors);
        }
    }

    /// <summary>The server's repository the agent's commits are made in (its objects borrow the team's mirror).</summary>
    public string ScratchRepository(string agentId) => Path.Combine(Scratch(agentId), "git");

    private async Task<(int Code, string Output, string Errors)> RunAsync(Agent agent, string what, string argument, int maxOutput, CancellationToken cancellationToken,
        IReadOnlyDictionary<string, string>? extra = null, bool writable = false)
    {
        var gate = _gates.GetOrAdd(agent.Id, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken);
        try
        {
            if (backends.Get(agent.Backend) is { Remote: true } remote)
            {
                return await RunThereAsync(remote, agent, what, argument, maxOutput, extra, cancellationToken);
            }
            var workspace = workspaces.ForTeam(agent.TeamId);
            var mirror = mirrors.PathOf(agent.TeamId);
            var scratch = Scratch(agent.Id);
            var environment = new Dictionary<string, string> { ["PATH"] = "/usr/local/bin:/usr/bin:/bin", ["LANG"] = "C.UTF-8", ["HOME"] = ScratchInside };
            foreach (var (key, value) in extra ?? new Dictionary<string, string>())
            {
                environment[key] = value;
            }
            try
            {
                if (sandboxes.InUse is { } sandbox)
                {
                    sandbox.GiveToSandbox(scratch);
                    return await sandbox.RunOfflineAsync(
                        ChangeScript.Argv($"{Isolated.Workspace}/{agent.WorkingDirectory}", ScratchInside, Path.Combine(mirror, "objects"), agent.BaseCommit!, what, argument),
                        [new SandboxMount(workspace, Isolated.Workspace, Writable: writable), new SandboxMount(mirror, mirror, Writable: false),
                            new SandboxMount(scratch, ScratchInside, Writable: true)],
                        "/", environment, maxOutput, Timeout, cancellationToken);
                }
                // No sandbox: the operator runs members' code with the server's own rights, so this reads with them too.
                environment["HOME"] = scratch;
                return await ShortProcess.RunAsync(
                    ChangeScript.Argv(Path.Combine(workspace, agent.WorkingDirectory), scratch, Path.Combine(mirror, "objects"), agent.BaseCommit!, what, argument),
                    environment, maxOutput, Timeout, cancellationToken);
            }
            catch (TimeoutException e)
            {
                return (124, "", e.Message);
            }
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>The server's own index and objects for reading the agent's tree: never where any agent can reach.</summary>
    private string Scratch(string agentId)
    {
        var root = Path.Combine(server.Value.DataDirectory, "changes");
        ServerOptions.EnsureDirectory(root);
        var scratch = Path.Combine(root, agentId);
        Directory.CreateDirectory(scratch, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return scratch;
    }

    private static RequestRefusedException Unreadable(Agent agent, int code, string errors) =>
        new(Refusal.Conflict, "changes-unreadable", "The agent's changes could not be read",
            $"Reading the changes of agent {agent.Id} failed (exit {code}): {errors.Trim()}");
}
