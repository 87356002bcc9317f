using System.Text;
using System.Text.RegularExpressions;
using Covibe.Execution;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Machines;
using Covibe.Server.Http;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

using Covibe.Server.Features.Git;
using Covibe.Server.Hosting;

namespace Covibe.Server.Features.Agents;

/// <summary>
/// Spawning and controlling agents, shared by REST, the hub and so the CLI. Everyone in the team
/// sees every agent; only its owner controls it (seed 001's permission model).
/// </summary>
public sealed partial class AgentService(
    IDbContextFactory<CovibeDb> dbs,
    AgentLauncher launcher,
    ExecutionBackends backends,
    MachineResolver machines,
    AgentSupervisor supervisor,
    AgentLeases leases,
    IAgentControlRoute route,
    AgentControl control,
    AgentActions actions,
    AgentEvents events,
    AgentFeeds feeds,
    Vms.VmAuditLog audit,
    Repositories.AgentBranches branches,
    IOptions<Repositories.RepositoriesOptions> repositoryOptions,
    IOptions<AgentsOptions> options,
    TimeProvider time,
    IRateLimits limits,
    AgentBudgets budgets,
    ILogger<AgentService> logger) : Boxes.IBoxOccupants
{
    public const int MaxTaskLength = 20_000;

    /// <summary>The team ({0}) has fewer agents that have not finished (the final statuses next) than its limit (last).</summary>
    private static readonly string ActiveBelowLimit =
        $"(SELECT COUNT(*) FROM agents WHERE team_id = {{0}} AND status NOT IN ({string.Join(", ", AgentStatuses.Final.Select((_, i) => $"{{{i + 1}}}"))})) < {{{AgentStatuses.Final.Length + 1}}}";

    /// <summary>As <see cref="ActiveBelowLimit"/>, and the team ({0}) has no budgets.</summary>
    private static readonly string ActiveBelowLimitWithoutBudgets = ActiveBelowLimit + " AND NOT EXISTS (SELECT 1 FROM budgets WHERE team_id = {0})";

    public async Task<AgentResult> SpawnAsync(Caller caller, SpawnAgentRequest request, CancellationToken cancellationToken)
    {
        var v = new Validator();
        var task = v.Text("task", request.Task, MaxTaskLength);
        var repository = string.IsNullOrWhiteSpace(request.RepositoryUrl) ? null : request.RepositoryUrl.Trim();
        if (repository is not null && GitNames.RepositoryProblem(repository, RepositoryFetcher.Agent) is { } repositoryProblem)
        {
            v.Fail("repositoryUrl", repositoryProblem);
        }
        var branch = string.IsNullOrWhiteSpace(request.Branch) ? null : request.Branch.Trim();
        if (branch is not null && !GitNames.IsBranchName(branch))
        {
            v.Fail("branch", "'branch' must be a branch name such as main or feature/login (letters, digits, . _ / -; not starting with - or containing ..).");
        }
        if (branch is not null && repository is null)
        {
            v.Fail("branch", "'branch' needs 'repositoryUrl'.");
        }
        if (request.BaseBranch is { } baseBranch && !GitNames.IsBranchName(baseBranch.Trim()))
        {
            v.Fail("baseBranch", "'baseBranch' must be a branch name such as main (letters, digits, . _ / -; not starting with - or containing ..).");
        }
        // Not given: the team's default, else the operator's (decided when the agent asks).
        var mode = string.IsNullOrWhiteSpace(request.PermissionMode) ? null : request.PermissionMode.Trim();
        if (mode is not null && !PermissionModes.All.Contains(mode))
        {
            v.Fail("permissionMode", $"'permissionMode' must be one of {string.Join(", ", PermissionModes.All)}.");
        }
        else if (mode == PermissionModes.Bypass && !options.Value.Permissions.AllowBypass)
        {
            v.Fail("permissionMode", "This server does not let agents run without asking (bypass); use ask or ask-but-allow-reads.");
        }
        if (!string.IsNullOrEmpty(request.BoxId) && (repository is not null || !string.IsNullOrEmpty(request.VmId)))
        {
            v.Fail("boxId", "An agent in a box works on the box's repository, there: leave out 'repositoryUrl', 'branch' and 'vmId'.");
        }
        if (!v.IsValid)
        {
            return new AgentResult(null, AgentFailure.Invalid, "Fix the fields listed in 'errors'.", v.Errors);
        }
        if (request.TeamId is not null && request.TeamId != caller.TeamId)
        {
            return AgentResult.Fail(AgentFailure.Forbidden, "You can only spawn agents for your own team.");
        }
        Place placement;
        try
        {
            placement = await machines.PlaceAsync(caller.TeamId, caller.UserId, request.VmId, request.BoxId, cancellationToken);
        }
        catch (PlacementException e)
        {
            return new AgentResult(null, AgentFailure.Invalid, "Fix the fields listed in 'errors'.", new() { [e.Field] = [e.Message] });
        }
        catch (PlacementUnavailableException e)
        {
            return AgentResult.Fail(e.Type == PlacementUnavailableException.EgressNotEnforced ? AgentFailure.EgressNotEnforced : AgentFailure.NowhereToRun, e.Message);
        }
        var (type, problem) = launcher.Resolve(request.AgentType);
        if (type is null)
        {
            return AgentResult.Fail(AgentFailure.Unavailable, problem!);
        }
        // Budgets are asked first, so a refused agent makes nothing (a branch); again, in turn, where it is saved.
        var budgeted = placement.TeamHasBudgets || budgets.HasCeiling;
        if (budgeted && await budgets.RefusalAsync(caller.TeamId, caller.UserId, cancellationToken) is { } spent)
        {
            return AgentResult.Fail(AgentFailure.BudgetSpent, spent);
        }

        var id = Tokens.NewId();
        var (workBranch, refused) = await BranchAsync(caller, request, placement, id, task, cancellationToken);
        if (refused is not null)
        {
            return refused;
        }

        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var agent = new Agent
        {
            Id = id,
            TeamId = caller.TeamId,
            UserId = caller.UserId,
            Type = type,
            Task = task,
            RepositoryUrl = workBranch?.RepositoryUrl ?? repository,
            Branch = workBranch?.BaseBranch ?? branch,
            WorkBranch = workBranch?.WorkBranch,
            BaseCommit = workBranch?.BaseCommit,
            Status = AgentStatuses.Starting,
            CreatedAt = time.GetUtcNow().UtcDateTime,
            Backend = placement.Backend,
            Target = placement.Target,
            // Relative to the team's workspace; a server-made id, so nothing from the user reaches the path. In a box: its repository.
            WorkingDirectory = placement.WorkingDirectory ?? id,
            BoxId = placement.BoxId,
            PermissionMode = launcher.AsksHost(type) ? EffectiveMode(mode ?? placement.TeamAgentPermissionMode) : null,
        };
        // Saved in the team's turn with budget changes (AgentBudgets), so judged by the budgets before a change or after it.
        // The insert itself checks the team's limit of unfinished agents, and, for a team placed without budgets, that it
        // still has none: one round trip.
        await using (var turn = await db.BeginSerializedAsync(AgentBudgets.SerialKey(caller.TeamId), cancellationToken))
        {
            if (await SaveAsync(db, agent, caller, budgeted, cancellationToken) is { } refusedNow)
            {
                return refusedNow;
            }
            await turn.CommitAsync(cancellationToken);
        }
        // Counted only for spawns that would otherwise go ahead; one refused here is taken back out.
        if (await limits.TryAcquireAsync("spawn", caller.UserId, options.Value.SpawnsPerMinute, TimeSpan.FromMinutes(1)) is not null)
        {
            await db.Agents.Where(a => a.Id == agent.Id).ExecuteDeleteAsync(CancellationToken.None);
            return AgentResult.Fail(AgentFailure.TooMany, $"You have spawned {options.Value.SpawnsPerMinute} agents in the last minute; wait a moment.");
        }
        db.Agents.Attach(agent);
        if (await placement.Jobs.StartsElsewhereAsync(agent.Target, cancellationToken) is { } node)
        {
            return await StartElsewhereAsync(db, agent, placement, node, caller, cancellationToken);
        }
        try
        {
            return await StartAsync(db, agent, placement, caller, cancellationToken);
        }
        catch (PlaceUnreachableException e)
        {
            AgentsLog.LaunchFailed(logger, agent.Id, e);
            return await PlaceAgainAsync(db, agent, caller, request, cancellationToken);
        }
    }

    /// <summary>Inserts the new agent if its budgets and the team's limit allow (in the caller's turn); else why not.</summary>
    private async Task<AgentResult?> SaveAsync(CovibeDb db, Agent agent, Caller caller, bool budgeted, CancellationToken cancellationToken)
    {
        object[] values = [caller.TeamId, .. AgentStatuses.Final, options.Value.MaxActivePerTeam];
        if (budgeted && await budgets.RefusalAsync(db, caller.TeamId, caller.UserId, cancellationToken) is { } spent)
        {
            return AgentResult.Fail(AgentFailure.BudgetSpent, spent);
        }
        if (await db.InsertIfAsync(agent, budgeted ? ActiveBelowLimit : ActiveBelowLimitWithoutBudgets, values, cancellationToken))
        {
            return null;
        }
        if (!budgeted)
        {
            // Refused by the limit, or by a budget the owner set since the team was placed: which one, now?
            if (await budgets.RefusalAsync(db, caller.TeamId, caller.UserId, cancellationToken) is { } spentMeanwhile)
            {
                return AgentResult.Fail(AgentFailure.BudgetSpent, spentMeanwhile);
            }
            if (await db.InsertIfAsync(agent, ActiveBelowLimit, values, cancellationToken))
            {
                return null;
            }
        }
        return AgentResult.Fail(AgentFailure.TooMany,
            $"Your team already has {options.Value.MaxActivePerTeam} agents running (the limit). Wait for one to finish, or kill one.");
    }

    /// <summary>The mode asked for (the member's, else the team's), else the operator's; bypass only where the operator allows it.</summary>
    private string EffectiveMode(string? asked)
    {
        var frame = options.Value.Permissions;
        var mode = asked ?? frame.Mode;
        return mode == PermissionModes.Bypass && !frame.AllowBypass ? PermissionModes.Ask : mode;
    }

    /// <summary>Starts a new agent (saved as starting) where <paramref name="placement"/> says, and follows it.</summary>
    private async Task<AgentResult> StartAsync(CovibeDb db, Agent agent, Place placement, Caller caller, CancellationToken cancellationToken)
    {
        try
        {
            var process = await placement.Jobs.StartAsync(launcher.Launch(agent, placement), cancellationToken);
            agent.RuntimeDirectory = process.RuntimeDirectory;
            agent.Target = process.Target ?? agent.Target;
            agent.Pid = process.Pid;
            agent.PidStartTime = process.StartTime;
            AgentsLog.Spawned(logger, agent.Id, agent.Type, caller.UserId, agent.Backend, process.Pid);
            if (placement.Jobs.Remote)
            {
                await audit.AgentAsync(agent.Target, agent.TeamId, caller.UserId, "agent.start", $"agent {agent.Id} ({agent.Type}) on {agent.Backend}", cancellationToken);
            }
        }
        catch (Exception e) when (e is IOException and not PlaceUnreachableException or System.ComponentModel.Win32Exception or UnauthorizedAccessException)
        {
            AgentsLog.LaunchFailed(logger, agent.Id, e);
            NotStarted(agent, e.Message);
        }
        await db.SaveChangesAsync(cancellationToken);
        if (agent.Process is not null)
        {
            // Open the feed now, so subscribers (and followers) attach before the first byte.
            feeds.Open(agent, options.Value.RingBytes);
            supervisor.Watch(agent.Id);
        }
        await events.StatusChangedAsync(agent, cancellationToken);
        return new AgentResult(events.ToDto(agent, caller.Name, canControl: true), Placement: placement);
    }

    /// <summary>
    /// Another node must start it (the VM's runner is connected there): that node starts it and follows it; the agent as
    /// the caller sees it then. Not answered: the agent failed, and the caller may try again.
    /// </summary>
    private async Task<AgentResult> StartElsewhereAsync(CovibeDb db, Agent agent, Place placement, string node, Caller caller, CancellationToken cancellationToken)
    {
        var started = await route.SendAsync(node, caller, new AgentCommand(agent.Id, AgentCommand.Start), cancellationToken);
        if (started is { Failure: AgentFailure.None })
        {
            return await GetAsync(caller, agent.Id, cancellationToken) with { Placement = placement };
        }
        return await NotStartedAsync(db, agent, caller,
            started?.Detail ?? "the VM's runner is connected to another server node, which did not answer. Try again in a moment", cancellationToken);
    }

    private void NotStarted(Agent agent, string reason)
    {
        agent.Status = AgentStatuses.Failed;
        agent.CompletedAt = time.GetUtcNow().UtcDateTime;
        agent.Error = $"The agent could not be started: {reason}";
    }

    /// <summary>The agent failed before it started: saved, told to the team, answered.</summary>
    private async Task<AgentResult> NotStartedAsync(CovibeDb db, Agent agent, Caller caller, string reason, CancellationToken cancellationToken)
    {
        NotStarted(agent, reason);
        await db.SaveChangesAsync(cancellationToken);
        await events.StatusChangedAsync(agent, cancellationToken);
        return new AgentResult(events.ToDto(agent, caller.Name, canControl: true));
    }

    /// <summary>
    /// Starts, on this node, an agent another node saved for its owner (<see cref="StartElsewhereAsync"/>): placed again
    /// here, where the runner is connected. Only nodes ask this (<see cref="IAgentControlRoute"/>), never a client.
    /// </summary>
    public async Task<AgentResult> StartHereAsync(Caller caller, string agentId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var agent = await db.Agents.SingleOrDefaultAsync(a => a.Id == agentId && a.TeamId == caller.TeamId && a.UserId == caller.UserId, cancellationToken);
        if (agent is null || agent.Status != AgentStatuses.Starting || agent.Process is not null)
        {
            return AgentResult.Fail(AgentFailure.NotRunning, "There is no agent of yours waiting to start with that id.");
        }
        Place placement;
        try
        {
            placement = await machines.PlaceAsync(agent.TeamId, agent.UserId, agent.Target, agent.BoxId, cancellationToken);
        }
        catch (Exception e) when (e is PlacementException or PlacementUnavailableException)
        {
            return await NotStartedAsync(db, agent, caller, e.Message, cancellationToken);
        }
        return await StartAsync(db, agent, placement, caller, cancellationToken);
    }

    public async Task<AgentDto[]> ListAsync(Caller caller, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var rows = await (from a in db.Agents
                          join u in db.Users on a.UserId equals u.Id
                          where a.TeamId == caller.TeamId
                          orderby a.CreatedAt descending
                          select new { a, u.Name }).Take(500).ToListAsync(cancellationToken);
        var ids = rows.Select(r => r.a.Id).ToList();
        var granted = (await db.AgentControllers
            .Where(c => ids.Contains(c.AgentId) && (c.UserId == caller.UserId || c.UserId == AgentController.WholeTeam))
            .Select(c => c.AgentId).ToListAsync(cancellationToken)).ToHashSet();
        return [.. rows.Select(r => events.ToDto(r.a, r.Name, r.a.UserId == caller.UserId || granted.Contains(r.a.Id)))];
    }

    public async Task<AgentResult> GetAsync(Caller caller, string agentId, CancellationToken cancellationToken)
    {
        var (agent, ownerName) = await FindAsync(caller, agentId, cancellationToken);
        return agent is null ? NotFound(agentId) : new AgentResult(events.ToDto(agent, ownerName!, await control.AllowsAsync(agent, caller.UserId, cancellationToken)));
    }

    /// <summary>The agent (of the caller's team) for reading its output; null if there is none.</summary>
    public async Task<Agent?> FindForReadingAsync(Caller caller, string agentId, CancellationToken cancellationToken) =>
        (await FindAsync(caller, agentId, cancellationToken)).Agent;

    public Task<AgentResult> KillAsync(Caller caller, string agentId, CancellationToken cancellationToken) =>
        RecordedAsync(caller, new AgentCommand(agentId, "kill"), AgentActionKinds.Kill, "killed it", cancellationToken);

    /// <summary>Stops every agent still running in a box that is being released (recorded as killed, as by their owners).</summary>
    Task Boxes.IBoxOccupants.StopAsync(string boxId, CancellationToken cancellationToken) => StopBoxAgentsAsync(boxId, cancellationToken);

    public async Task StopBoxAgentsAsync(string boxId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var running = await db.Agents.Where(a => a.BoxId == boxId && !AgentStatuses.Final.Contains(a.Status)).ToListAsync(cancellationToken);
        foreach (var agent in running)
        {
            agent.KillRequested = true;
            await db.SaveChangesAsync(cancellationToken);
            if (agent.Process is { } process)
            {
                try
                {
                    await backends.Get(agent.Backend).SignalAsync(process, AgentSignal.Kill, cancellationToken);
                }
                catch (PlaceUnreachableException e)
                {
                    // The box goes anyway: its container, with the agent in it, is removed once the engine answers again.
                    AgentsLog.KillDeferred(logger, agent.Id, e.Message);
                }
            }
            supervisor.KillRequested(agent.Id);
        }
    }

    private async Task<(Agent? Agent, string? OwnerName)> FindAsync(Caller caller, string agentId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var row = await (from a in db.Agents
                         join u in db.Users on a.UserId equals u.Id
                         where a.Id == agentId && a.TeamId == caller.TeamId
                         select new { a, u.Name }).AsNoTracking().SingleOrDefaultAsync(cancellationToken);
        return (row?.a, row?.Name);
    }

    private static AgentResult NotFound(string agentId) =>
        AgentResult.Fail(AgentFailure.NotFound, $"Your team has no agent '{agentId}'. List them with GET /api/agent/list.");
}
