using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Covibe.Server.Features.Metrics;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Agents;

/// <summary>
/// Seed 001's agent metrics, as this node sees them (meter <c>Covibe.Agents</c>; labels in docs/operations.md):
/// agents running here by place (and team, where the operator allows it), agents ended by place and status (the
/// completion rate), what they spent (Claude's <c>total_cost_usd</c>) and their tokens, and who watches their output.
/// </summary>
public sealed class AgentMetrics : Hosting.IMetricsSource
{
    public const string MeterName = "Covibe.Agents";

    private readonly ConcurrentDictionary<string, (string Place, string TeamId)> _running = new();
    private readonly ConcurrentDictionary<string, bool> _places = new();
    private readonly Counter<long> _ended;
    private readonly Counter<double> _cost;
    private readonly Counter<long> _tokens;
    private readonly Counter<long> _outputBytes;
    private readonly bool _teamLabels;

    public AgentMetrics(IMeterFactory meters, AgentFeeds feeds, IOptions<MetricsOptions> options)
    {
        _teamLabels = options.Value.TeamLabels;
        var meter = meters.Create(MeterName);
        meter.CreateObservableGauge("covibe.agents.running", ObserveRunning, "{agent}", "Agents this node follows that have not ended");
        _ended = meter.CreateCounter<long>("covibe.agents.ended", "{agent}", "Agents that ended here, by status: completed, failed, killed or lost");
        _cost = meter.CreateCounter<double>("covibe.agents.cost", "USD", "What agents spent, as Claude reports it (total_cost_usd)");
        _tokens = meter.CreateCounter<long>("covibe.agents.tokens", "{token}", "Tokens agents used, by direction: input or output");
        _outputBytes = meter.CreateCounter<long>("covibe.agents.output", "By", "Bytes of output agents wrote");
        meter.CreateObservableGauge("covibe.agents.watchers", () => feeds.Watchers.Value, "{subscription}", "Subscriptions to agents' output on this node");
    }

    /// <summary>This node follows the agent now (until <see cref="Unfollowed"/>).</summary>
    public void Following(string agentId, string place, string teamId)
    {
        _places[place] = true;
        _running[agentId] = (place, teamId);
    }

    public void Unfollowed(string agentId) => _running.TryRemove(agentId, out _);

    public void Ended(string place, string status, long outputBytes)
    {
        _ended.Add(1, new KeyValuePair<string, object?>("place", place), new KeyValuePair<string, object?>("status", status));
        _outputBytes.Add(outputBytes, new KeyValuePair<string, object?>("place", place));
    }

    /// <summary>An agent's totals grew from <paramref name="before"/> to <paramref name="after"/> (Claude reports running totals).</summary>
    public void Spent(string place, double? costBefore, double? costAfter, long? inputBefore, long? inputAfter, long? outputBefore, long? outputAfter)
    {
        var where = new KeyValuePair<string, object?>("place", place);
        if ((costAfter ?? 0) - (costBefore ?? 0) is var cost and > 0)
        {
            _cost.Add(cost, where);
        }
        if ((inputAfter ?? 0) - (inputBefore ?? 0) is var input and > 0)
        {
            _tokens.Add(input, where, new KeyValuePair<string, object?>("direction", "input"));
        }
        if ((outputAfter ?? 0) - (outputBefore ?? 0) is var output and > 0)
        {
            _tokens.Add(output, where, new KeyValuePair<string, object?>("direction", "output"));
        }
    }

    private IEnumerable<Measurement<int>> ObserveRunning()
    {
        var counts = new Dictionary<(string Place, string? TeamId), int>();
        if (!_teamLabels)
        {
            // A place agents ran at reads 0 once they all ended, rather than nothing.
            foreach (var place in _places.Keys)
            {
                counts[(place, null)] = 0;
            }
        }
        foreach (var (place, teamId) in _running.Values)
        {
            var key = (place, _teamLabels ? teamId : null);
            counts[key] = counts.GetValueOrDefault(key) + 1;
        }
        foreach (var ((place, teamId), count) in counts)
        {
            yield return teamId is null
                ? new Measurement<int>(count, new KeyValuePair<string, object?>("place", place))
                : new Measurement<int>(count, new KeyValuePair<string, object?>("place", place), new KeyValuePair<string, object?>("team", teamId));
        }
    }
}
