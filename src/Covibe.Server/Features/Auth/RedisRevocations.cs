using Covibe.Server.Features.Cluster;
using StackExchange.Redis;

namespace Covibe.Server.Features.Auth;

/// <summary>Several nodes: a logout or a removal on any node closes that login's sockets and terminals on every node.</summary>
public sealed class RedisRevocations(SessionEvents sessions, RedisBus bus) : IHostedService
{
    private const string Suffix = "revoked";

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await bus.SubscribeAsync(Suffix, Heard);
        sessions.RevokedHere += Tell;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        sessions.RevokedHere -= Tell;
        return Task.CompletedTask;
    }

    private void Tell(IReadOnlyCollection<string> sessionIds) => bus.Publish(Suffix, string.Join('\n', sessionIds.Prepend(bus.Node)));

    private void Heard(RedisValue value)
    {
        var lines = ((string?)value ?? "").Split('\n');
        if (lines.Length > 1 && lines[0] != bus.Node)
        {
            sessions.RevokedElsewhere(lines[1..]);
        }
    }
}
