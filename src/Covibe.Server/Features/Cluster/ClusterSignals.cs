using StackExchange.Redis;

namespace Covibe.Server.Features.Cluster;

/// <summary>
/// Small notes to every node, this one included: "the preview of team X has a deploy queued; whoever deploys, look". They
/// carry names, never data (the database has it), and may be lost (Redis away): whoever acts on them also looks on its
/// own now and then. One node: delivered here at once.
/// </summary>
public interface IClusterSignals
{
    void Send(string signal, string value);

    /// <summary>(signal, value), on every node including the sender's; handlers must not block.</summary>
    event Action<string, string>? Received;
}

public sealed class LocalClusterSignals : IClusterSignals
{
    public event Action<string, string>? Received;

    public void Send(string signal, string value) => Received?.Invoke(signal, value);
}

/// <summary>Signals on <c>&lt;Channel&gt;:signals</c>: delivered here at once, and to the other nodes through Redis.</summary>
public sealed class RedisClusterSignals(RedisBus bus) : IClusterSignals, IHostedService
{
    private const string Suffix = "signals";

    public event Action<string, string>? Received;

    public void Send(string signal, string value)
    {
        Received?.Invoke(signal, value);
        bus.Publish(Suffix, $"{bus.Node}\n{signal}\n{value}");
    }

    public Task StartAsync(CancellationToken cancellationToken) => bus.SubscribeAsync(Suffix, Heard);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private void Heard(RedisValue message)
    {
        var parts = ((string?)message ?? "").Split('\n', 3);
        if (parts.Length == 3 && parts[0] != bus.Node)
        {
            Received?.Invoke(parts[1], parts[2]);
        }
    }
}
