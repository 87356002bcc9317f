using System.Collections.Concurrent;
using Covibe.Protocol;
using Covibe.Server.Features.Events;

namespace Covibe.Server.Features.Egress;

/// <summary>
/// Tells a team each connection its egress policy refused: <c>egress_blocked</c> on the hub, a line in the log, and the
/// latest ones in <c>GET /api/team/egress</c> (this node's, newest first). The same host and port again within ten
/// seconds is counted, not told again, so a retrying build does not flood the team.
/// </summary>
public sealed class EgressEvents(ITeamEvents events, TimeProvider time, ILogger<EgressEvents> logger)
{
    private const int Kept = 50;
    private static readonly TimeSpan Quiet = TimeSpan.FromSeconds(10);
    private readonly ConcurrentDictionary<string, LinkedList<EgressBlockDto>> _recent = new();

    public void Blocked(string teamId, string host, int port, string how)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var recent = _recent.GetOrAdd(teamId, _ => new LinkedList<EgressBlockDto>());
        EgressBlockDto block;
        lock (recent)
        {
            if (recent.First?.Value is { } last && last.Host == host && last.Port == port && last.How == how && now - last.At < Quiet)
            {
                recent.First.Value = last with { Count = last.Count + 1 };
                return;
            }
            block = new EgressBlockDto(host, port, how, 1, now, Message(host, port, how));
            recent.AddFirst(block);
            while (recent.Count > Kept)
            {
                recent.RemoveLast();
            }
        }
        EgressLog.Blocked(logger, teamId, how, host, port);
        events.Publish(teamId, new EgressBlockedMessage(block));
    }

    public EgressBlockDto[] Recent(string teamId)
    {
        if (!_recent.TryGetValue(teamId, out var recent))
        {
            return [];
        }
        lock (recent)
        {
            return [.. recent];
        }
    }

    private static string Message(string host, int port, string how) =>
        $"blocked: {host}:{port} by the team's egress policy" + (how == "direct"
            ? " (a direct connection: programs reach the hosts the team allows through the proxy, as HTTPS_PROXY says)"
            : "");
}
