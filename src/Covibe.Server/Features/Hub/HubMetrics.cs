using System.Diagnostics.Metrics;

namespace Covibe.Server.Features.Hub;

/// <summary>
/// The hub's metrics (meter <c>Covibe.Hub</c>; labels in docs/operations.md): open connections by wire (<c>json</c> for
/// <c>/ws</c>, <c>socketio</c> for seed 001's clients) and whether joined to a team, and connections let go for being too
/// slow to take what they were sent (their queue full: the hub's drops).
/// </summary>
public sealed class HubMetrics : Hosting.IMetricsSource
{
    public const string MeterName = "Covibe.Hub";

    private readonly Counter<long> _tooSlow;

    public HubMetrics(IMeterFactory meters, TeamHub hub)
    {
        var meter = meters.Create(MeterName);
        meter.CreateObservableGauge("covibe.hub.connections", () => Observe(hub), "{connection}", "Open hub connections (WebSocket or Socket.IO)");
        _tooSlow = meter.CreateCounter<long>("covibe.hub.dropped", "{connection}", "Connections closed because their send queue filled (a client too slow for what it was sent)");
    }

    internal void Dropped(HubConnection connection) => _tooSlow.Add(1, Wire(connection));

    private static IEnumerable<Measurement<int>> Observe(TeamHub hub)
    {
        // Every wire, joined or not, reads 0 rather than nothing when none is open.
        var counts = new Dictionary<(HubWire, bool), int>
        {
            [(HubWire.Json, true)] = 0, [(HubWire.Json, false)] = 0, [(HubWire.SocketIo, true)] = 0, [(HubWire.SocketIo, false)] = 0,
        };
        foreach (var connection in hub.Open)
        {
            var key = (connection.Wire, connection.Member is not null);
            counts[key] = counts.GetValueOrDefault(key) + 1;
        }
        foreach (var ((wire, joined), count) in counts)
        {
            yield return new Measurement<int>(count, Wire(wire), new KeyValuePair<string, object?>("joined", joined));
        }
    }

    private static KeyValuePair<string, object?> Wire(HubConnection connection) => Wire(connection.Wire);

    private static KeyValuePair<string, object?> Wire(HubWire wire) => new("wire", wire == HubWire.SocketIo ? "socketio" : "json");
}
