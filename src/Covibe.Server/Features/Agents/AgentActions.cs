using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Events;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Agents;

/// <summary>
/// Who did what to an agent (issue 26): each input, approval, denial, interrupt, kill, grant and handover is kept with who,
/// when and where in the agent's output it happened, told to the team at once (<c>agent_action</c>), replayed in place to a
/// watcher who subscribes from a position, and listed over REST.
/// </summary>
public sealed class AgentActions(IDbContextFactory<CovibeDb> dbs, AgentFeeds feeds, ITeamEvents events, TimeProvider time)
{
    public const int MaxText = 300;

    /// <summary>
    /// Records an action; <paramref name="at"/> is where in the output it happened (the output as far as this node has it
    /// when not given). <paramref name="userName"/>: the member's name as the team sees it (null: Covibe itself).
    /// </summary>
    public Task<AgentActionDto> RecordAsync(Agent agent, string? userId, string? userName, string kind, string text, CancellationToken cancellationToken, long? at = null) =>
        RecordAsync(agent.Id, agent.TeamId, at ?? feeds.Get(agent.Id)?.Position ?? agent.OutputBytes, userId, userName, kind, text, cancellationToken);

    /// <summary>Where the agent's output is now, as far as this node knows (null: it has no feed of it).</summary>
    public long? PositionNow(string agentId) => feeds.Get(agentId)?.Position;

    /// <summary>Records an action on the agent <paramref name="agentId"/>, done when its output was <paramref name="at"/> long.</summary>
    public async Task<AgentActionDto> RecordAsync(string agentId, string teamId, long at, string? userId, string? userName, string kind, string text, CancellationToken cancellationToken)
    {
        var action = new AgentAction
        {
            AgentId = agentId,
            TeamId = teamId,
            UserId = userId,
            Kind = kind,
            Text = text.Length <= MaxText ? text : text[..MaxText] + "…",
            Position = at,
            At = time.GetUtcNow().UtcDateTime,
        };
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        db.AgentActions.Add(action);
        await db.SaveChangesAsync(CancellationToken.None);
        var dto = ToDto(action, userName);
        events.Publish(teamId, new AgentActionMessage(dto));
        return dto;
    }

    /// <summary>The agent's actions at or after <paramref name="position"/> in its output, oldest first (at most 1,000).</summary>
    /// <remarks>
    /// Callers asking for the same agent and position while a read is under way share it: when an agent starts, every
    /// member following the team subscribes from its start at once (1,000 watchers made 1,000 reads, and the last of them
    /// saw the agent's first output seconds late). An action recorded during the read reaches them live (agent_action).
    /// </remarks>
    public Task<AgentActionDto[]> FromAsync(string agentId, long position, CancellationToken cancellationToken) =>
        _reads.GetAsync((agentId, position), key => ReadFromAsync(key.AgentId, key.Position), cancellationToken);

    private readonly SharedReads<(string AgentId, long Position), AgentActionDto[]> _reads = new();

    // Shared by every caller that waits for it: no one caller's cancellation ends it.
    private async Task<AgentActionDto[]> ReadFromAsync(string agentId, long position)
    {
        await using var db = await dbs.CreateDbContextAsync(CancellationToken.None);
        var rows = await (from a in db.AgentActions
                          where a.AgentId == agentId && a.Position >= position
                          join u in db.Users on a.UserId equals u.Id into users
                          from u in users.DefaultIfEmpty()
                          orderby a.Id
                          select new { a, Name = u == null ? null : u.Name }).Take(1000).ToListAsync(CancellationToken.None);
        return [.. rows.Select(r => ToDto(r.a, r.Name))];
    }

    private static AgentActionDto ToDto(AgentAction a, string? name) => new(a.Id, a.AgentId, a.Kind, a.Text, a.UserId, name, a.Position, a.At);
}
