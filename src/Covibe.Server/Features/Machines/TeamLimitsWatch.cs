using Covibe.Execution.Local;
using Covibe.Protocol;
using Covibe.Server.Features.Events;

namespace Covibe.Server.Features.Machines;

/// <summary>
/// Tells a team when its limits on this machine stopped something (a process killed for memory, new processes refused):
/// <c>team_limit</c> on the hub and a line in the log, so a member whose build died sees why and the owner can ask the
/// operator for more. Looks every two seconds at the counters of the teams' groups.
/// </summary>
public sealed class TeamLimitsWatch(SandboxLimits limits, ITeamEvents events, TimeProvider time, ILogger<TeamLimitsWatch> logger) : BackgroundService
{
    private readonly Dictionary<string, TeamLimitEvents> _seen = [];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (limits.Groups is not { } groups)
        {
            return;
        }
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(2), time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            foreach (var teamId in groups.Teams)
            {
                var now = groups.Events(teamId);
                var before = _seen.GetValueOrDefault(teamId, new TeamLimitEvents(0, 0));
                _seen[teamId] = now;
                var l = groups.Limits;
                Tell(teamId, "memory", now.OomKills - before.OomKills,
                    $"Your team's programs on this server reached the team's memory limit ({l.MemoryBytes / (1024 * 1024)} MiB): {now.OomKills - before.OomKills} process(es) were stopped.");
                Tell(teamId, "processes", now.ForksRefused - before.ForksRefused,
                    $"Your team's programs on this server reached the team's process limit ({l.Processes}): new processes were refused.");
            }
        }
    }

    private void Tell(string teamId, string limit, long count, string message)
    {
        if (count > 0)
        {
            MachinesLog.TeamLimitReached(logger, teamId, limit, message);
            events.Publish(teamId, new TeamLimitMessage(limit, count, message));
        }
    }
}
