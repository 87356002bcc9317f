using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Events;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Agents;

/// <summary>The agent's controllers, or why the request about them was refused.</summary>
public sealed record HandoverResult(AgentControllersResponse? Controllers, AgentFailure Failure = AgentFailure.None, string? Detail = null)
{
    public static HandoverResult Fail(AgentFailure failure, string detail) => new(null, failure, detail);
}

/// <summary>
/// Handing an agent over (issue 26): its owner grants control to a member, several, or the whole team, and takes it back; a
/// member asks its owner for control; the team's owner takes over a member's agent where the team allows it. Whoever was
/// given control may give it back. Every change is recorded in the agent's stream and reaches every watcher's
/// <c>canControl</c> at once, on every node.
/// </summary>
public sealed class AgentHandover(
    IDbContextFactory<CovibeDb> dbs,
    AgentControl control,
    AgentActions actions,
    AgentEvents agentEvents,
    Push.PushService push,
    ITeamEvents events,
    Http.IRateLimits limits,
    TimeProvider time,
    ILogger<AgentHandover> logger)
{
    private const int AsksPerMinute = 3;

    public async Task<HandoverResult> ListAsync(Caller caller, string agentId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var agent = await db.Agents.AsNoTracking().SingleOrDefaultAsync(a => a.Id == agentId && a.TeamId == caller.TeamId, cancellationToken);
        return agent is null ? NotFound(agentId) : new HandoverResult(await ControllersAsync(db, agent, cancellationToken));
    }

    /// <summary>The owner gives control to <see cref="GrantControlRequest.UserId"/> (a member of the team) or to the whole team.</summary>
    public async Task<HandoverResult> GrantAsync(Caller caller, string agentId, GrantControlRequest request, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var agent = await db.Agents.AsNoTracking().SingleOrDefaultAsync(a => a.Id == agentId && a.TeamId == caller.TeamId, cancellationToken);
        if (agent is null)
        {
            return NotFound(agentId);
        }
        if (agent.UserId != caller.UserId)
        {
            return HandoverResult.Fail(AgentFailure.Forbidden, "Only the agent's owner can hand it over; ask them for control (POST /api/agent/{id}/control/ask).");
        }
        var wholeTeam = request.WholeTeam == true;
        if (wholeTeam == !string.IsNullOrWhiteSpace(request.UserId))
        {
            return HandoverResult.Fail(AgentFailure.Invalid, "Give either 'userId' (a member of your team) or 'wholeTeam': true.");
        }
        string text;
        var userId = wholeTeam ? AgentController.WholeTeam : request.UserId!.Trim();
        if (wholeTeam)
        {
            text = "gave control to the whole team";
        }
        else
        {
            var member = await db.Users.AsNoTracking().SingleOrDefaultAsync(u => u.Id == userId && u.TeamId == caller.TeamId && u.RemovedAt == null, cancellationToken);
            if (member is null)
            {
                return HandoverResult.Fail(AgentFailure.Invalid, $"'{userId}' is not a member of your team (GET /api/team lists them).");
            }
            if (member.Id == agent.UserId)
            {
                return HandoverResult.Fail(AgentFailure.Invalid, "That is the agent's owner, who controls it already.");
            }
            text = $"gave control to {member.Name}";
        }
        if (!await db.AgentControllers.AnyAsync(c => c.AgentId == agentId && c.UserId == userId, cancellationToken))
        {
            db.AgentControllers.Add(new AgentController { AgentId = agentId, UserId = userId, GrantedBy = caller.UserId, GrantedAt = time.GetUtcNow().UtcDateTime });
            await db.SaveChangesAsync(cancellationToken);
            await ChangedAsync(agent, caller, AgentActionKinds.Grant, text, cancellationToken);
        }
        return new HandoverResult(await ControllersAsync(db, agent, cancellationToken));
    }

    /// <summary>The owner takes control back from <paramref name="userId"/> (<c>*</c>: the team); a member may give back their own.</summary>
    public async Task<HandoverResult> RevokeAsync(Caller caller, string agentId, string userId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var agent = await db.Agents.AsNoTracking().SingleOrDefaultAsync(a => a.Id == agentId && a.TeamId == caller.TeamId, cancellationToken);
        if (agent is null)
        {
            return NotFound(agentId);
        }
        if (agent.UserId != caller.UserId && userId != caller.UserId)
        {
            return HandoverResult.Fail(AgentFailure.Forbidden, "Only the agent's owner can take control back; you can give back your own.");
        }
        var removed = await db.AgentControllers.Where(c => c.AgentId == agentId && c.UserId == userId).ExecuteDeleteAsync(cancellationToken);
        if (removed == 0)
        {
            return HandoverResult.Fail(AgentFailure.NotFound, userId == AgentController.WholeTeam ? "The agent is not handed to the whole team." : "That member was not given control of the agent.");
        }
        var name = userId == AgentController.WholeTeam ? "the whole team"
            : await db.Users.Where(u => u.Id == userId).Select(u => u.Name).SingleOrDefaultAsync(cancellationToken) ?? "a former member";
        await ChangedAsync(agent, caller, AgentActionKinds.Revoke, userId == caller.UserId ? "gave control back" : $"took control back from {name}", cancellationToken);
        return new HandoverResult(await ControllersAsync(db, agent, cancellationToken));
    }

    /// <summary>A member asks the owner for control: the owner hears it (and may grant it from the notification); the team sees it asked.</summary>
    public async Task<HandoverResult> AskAsync(Caller caller, string agentId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var agent = await db.Agents.AsNoTracking().SingleOrDefaultAsync(a => a.Id == agentId && a.TeamId == caller.TeamId, cancellationToken);
        if (agent is null)
        {
            return NotFound(agentId);
        }
        if (await control.AllowsAsync(agent, caller.UserId, cancellationToken))
        {
            return HandoverResult.Fail(AgentFailure.Invalid, "You control this agent already.");
        }
        if (AgentStatuses.IsFinal(agent.Status))
        {
            return HandoverResult.Fail(AgentFailure.NotRunning, $"The agent has already finished ({agent.Status}).");
        }
        // Each ask reaches its owner's phone: a few a minute per member and agent, no more.
        if (await limits.TryAcquireAsync("ask-control", $"{caller.UserId}:{agent.Id}", AsksPerMinute, TimeSpan.FromMinutes(1)) is not null)
        {
            return HandoverResult.Fail(AgentFailure.RateLimited, $"You have asked {AsksPerMinute} times in the last minute; its owner has been told. Wait a moment.");
        }
        await actions.RecordAsync(agent, caller.UserId, caller.Name, AgentActionKinds.AskControl, "asked for control", cancellationToken);
        events.Publish(agent.TeamId, [agent.UserId], canGrant => new AgentControlRequestedMessage(agent.Id, caller.UserId, caller.Name, canGrant));
        push.Notify([agent.UserId], agent.TeamId, new PushNote($"{caller.Name} asks to control your agent", agent.Task.Length <= 120 ? agent.Task : agent.Task[..120] + "…",
            $"/?agent={agent.Id}", $"control-{agent.Id}", agent.Id));
        return new HandoverResult(await ControllersAsync(db, agent, cancellationToken));
    }

    /// <summary>The team's owner takes a member's agent over (the team allows it by default): they control it from now on, beside its owner.</summary>
    public async Task<HandoverResult> TakeOverAsync(Caller caller, string agentId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var agent = await db.Agents.AsNoTracking().SingleOrDefaultAsync(a => a.Id == agentId && a.TeamId == caller.TeamId, cancellationToken);
        if (agent is null)
        {
            return NotFound(agentId);
        }
        var team = await db.Teams.AsNoTracking().SingleAsync(t => t.Id == caller.TeamId, cancellationToken);
        if (team.OwnerId != caller.UserId)
        {
            return HandoverResult.Fail(AgentFailure.Forbidden, "Only the team's owner can take a member's agent over; ask its owner for control instead.");
        }
        if (!team.OwnerTakesOver)
        {
            return HandoverResult.Fail(AgentFailure.Forbidden, "Your team does not let its owner take members' agents over (PUT /api/team/agent-settings).");
        }
        if (await control.AllowsAsync(agent, caller.UserId, cancellationToken))
        {
            return HandoverResult.Fail(AgentFailure.Invalid, "You control this agent already.");
        }
        db.AgentControllers.Add(new AgentController { AgentId = agentId, UserId = caller.UserId, GrantedBy = caller.UserId, GrantedAt = time.GetUtcNow().UtcDateTime });
        await db.SaveChangesAsync(cancellationToken);
        await ChangedAsync(agent, caller, AgentActionKinds.TakeOver, "took the agent over", cancellationToken);
        return new HandoverResult(await ControllersAsync(db, agent, cancellationToken));
    }

    public async Task<TeamAgentSettings> SettingsAsync(Caller caller, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var team = await db.Teams.AsNoTracking().SingleAsync(t => t.Id == caller.TeamId, cancellationToken);
        return new TeamAgentSettings(team.AgentPermissionMode, team.OwnerTakesOver);
    }

    /// <summary>The team's owner sets the team's agent defaults (the mode within what the operator allows).</summary>
    public async Task<(TeamAgentSettings? Settings, AgentFailure Failure, string? Detail)> SetSettingsAsync(Caller caller, TeamAgentSettings settings, bool bypassAllowed, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var team = await db.Teams.SingleAsync(t => t.Id == caller.TeamId, cancellationToken);
        if (team.OwnerId != caller.UserId)
        {
            return (null, AgentFailure.Forbidden, "Only the team's owner can change the team's agent settings.");
        }
        if (settings.PermissionMode is { } mode && (!PermissionModes.All.Contains(mode) || (mode == PermissionModes.Bypass && !bypassAllowed)))
        {
            return (null, AgentFailure.Invalid, bypassAllowed
                ? $"'permissionMode' must be one of {string.Join(", ", PermissionModes.All)}, or null for the server's default."
                : "'permissionMode' must be ask or ask-but-allow-reads (this server does not let agents run without asking), or null for the server's default.");
        }
        team.AgentPermissionMode = settings.PermissionMode;
        team.OwnerTakesOver = settings.OwnerTakesOver;
        await db.SaveChangesAsync(cancellationToken);
        return (new TeamAgentSettings(team.AgentPermissionMode, team.OwnerTakesOver), AgentFailure.None, null);
    }

    private async Task ChangedAsync(Agent agent, Caller caller, string kind, string text, CancellationToken cancellationToken)
    {
        AgentsLog.Handover(logger, agent.Id, text, caller.UserId);
        control.Changed(agent.Id);
        await actions.RecordAsync(agent, caller.UserId, caller.Name, kind, text, cancellationToken);
        // Every watcher's canControl, per viewer, at once.
        await agentEvents.StatusChangedAsync(agent, cancellationToken);
    }

    private static async Task<AgentControllersResponse> ControllersAsync(CovibeDb db, Agent agent, CancellationToken cancellationToken)
    {
        var rows = await (from c in db.AgentControllers
                          where c.AgentId == agent.Id
                          join u in db.Users on c.UserId equals u.Id into users
                          from u in users.DefaultIfEmpty()
                          orderby c.GrantedAt
                          select new AgentControllerDto(c.UserId, u == null ? null : u.Name, c.GrantedBy, c.GrantedAt)).ToListAsync(cancellationToken);
        var ownerName = await db.Users.Where(u => u.Id == agent.UserId).Select(u => u.Name).SingleAsync(cancellationToken);
        return new AgentControllersResponse(agent.UserId, ownerName, [.. rows]);
    }

    private static HandoverResult NotFound(string agentId) =>
        HandoverResult.Fail(AgentFailure.NotFound, $"Your team has no agent '{agentId}'. List them with GET /api/agent/list.");
}
