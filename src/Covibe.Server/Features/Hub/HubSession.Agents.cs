using Covibe.Protocol;
using Covibe.Server.Features.Agents;
using Covibe.Server.Features.Auth;

namespace Covibe.Server.Features.Hub;

/// <summary>A connection's agents: controlling them, and its subscriptions to their output (one pump each).</summary>
internal sealed partial class HubSession
{
    private readonly HubAgentWatcher _watcher = new(connection);
    private readonly Dictionary<string, (CancellationTokenSource Stop, Task Pump)> _subscriptions = [];
    private readonly Lock _subscriptionsLock = new();

    private async Task ControlAsync(Caller caller, AgentControlMessage control, CancellationToken cancellationToken)
    {
        const string type = HubMessageTypes.AgentControl;
        if (string.IsNullOrEmpty(control.AgentId))
        {
            Error(HubErrorCodes.InvalidMessage, "agent_control needs 'agentId'.", type);
            return;
        }
        var result = control.Command switch
        {
            "kill" => await services.Agents.KillAsync(caller, control.AgentId, cancellationToken),
            "interrupt" => await services.Agents.InterruptAsync(caller, control.AgentId, cancellationToken),
            "end" => await services.Agents.EndInputAsync(caller, control.AgentId, cancellationToken),
            "input" when !string.IsNullOrEmpty(control.Data) => await services.Agents.InputAsync(caller, control.AgentId, control.Data, cancellationToken),
            "input" => AgentResult.Fail(AgentFailure.Invalid, "'input' needs 'data': the text to write to the agent's stdin."),
            _ => AgentResult.Fail(AgentFailure.Invalid, $"Unknown command '{control.Command}'. Use kill, interrupt, input or end."),
        };
        if (result.Agent is null)
        {
            AgentError(result, type);
        }
    }

    private void AgentError(AgentResult result, string type)
    {
        var code = result.Failure switch
        {
            AgentFailure.NotFound => HubErrorCodes.NotFound,
            AgentFailure.Forbidden => HubErrorCodes.Forbidden,
            AgentFailure.NotRunning => HubErrorCodes.AgentNotRunning,
            AgentFailure.Unavailable => HubErrorCodes.AgentUnavailable,
            AgentFailure.TooMany or AgentFailure.RateLimited => HubErrorCodes.RateLimited,
            AgentFailure.Unreachable => HubErrorCodes.AgentUnreachable,
            AgentFailure.NowhereToRun or AgentFailure.PlaceUnreachable => HubErrorCodes.ContainerEngineUnavailable,
            AgentFailure.EgressNotEnforced => HubErrorCodes.EgressNotEnforced,
            AgentFailure.RepositoryUnreachable => HubErrorCodes.RepositoryUnreachable,
            AgentFailure.BudgetSpent => HubErrorCodes.BudgetSpent,
            _ => HubErrorCodes.InvalidMessage,
        };
        var detail = result.Errors is { Count: > 0 } errors ? string.Join(" ", errors.SelectMany(e => e.Value)) : result.Detail!;
        Error(code, detail, type);
    }

    private void OnAgentStarted(AgentFeed feed)
    {
        if (connection.Member is { } member && feed.TeamId == member.TeamId)
        {
            // From its start (a new agent's first byte; another node's agent from the first of it this node heard).
            Subscribe(feed.AgentId, from: feed.RingStart, replace: false);
        }
    }

    /// <summary>Starts sending an agent's output; <paramref name="replace"/> restarts an existing subscription from the new position.</summary>
    private void Subscribe(string agentId, long? from, bool replace)
    {
        lock (_subscriptionsLock)
        {
            if (_session.IsCancellationRequested)
            {
                return;
            }
            if (_subscriptions.TryGetValue(agentId, out var existing))
            {
                if (!replace && !existing.Pump.IsCompleted)
                {
                    return;
                }
                existing.Stop.Cancel();
            }
            var stop = CancellationTokenSource.CreateLinkedTokenSource(_session.Token);
            _subscriptions[agentId] = (stop, PumpAsync(agentId, from, stop.Token));
        }
    }

    private async Task PumpAsync(string agentId, long? from, CancellationToken cancellationToken)
    {
        await Task.Yield();
        try
        {
            await services.Pump.RunAsync(_watcher, agentId, from, cancellationToken);
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e)
        {
            HubLog.Failed(services.Logger, connection.Id, e);
        }
    }

    private async Task UnsubscribeAsync(string agentId)
    {
        (CancellationTokenSource Stop, Task Pump) subscription;
        lock (_subscriptionsLock)
        {
            if (!_subscriptions.Remove(agentId, out subscription))
            {
                return;
            }
        }
        await subscription.Stop.CancelAsync();
        await subscription.Pump;
        subscription.Stop.Dispose();
    }

    private async Task StopSubscriptionsAsync()
    {
        (CancellationTokenSource Stop, Task Pump)[] all;
        lock (_subscriptionsLock)
        {
            all = [.. _subscriptions.Values];
            _subscriptions.Clear();
        }
        await Task.WhenAll(all.Select(s => s.Pump));
        foreach (var s in all)
        {
            s.Stop.Dispose();
        }
    }
}
