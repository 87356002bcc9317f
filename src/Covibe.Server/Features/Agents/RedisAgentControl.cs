using System.Collections.Concurrent;
using System.Globalization;
using Covibe.Server.Features.Auth;
using StackExchange.Redis;
using Covibe.Server.Features.Cluster;

namespace Covibe.Server.Features.Agents;

/// <summary>
/// An owner's control command for an agent another node follows: sent on that node's own channel
/// (<c>&lt;Channel&gt;:node:&lt;id&gt;</c>), carried out there (where its process, runner connection and kill deadline are)
/// with the same checks, and answered on the sender's channel. No answer within <see cref="Timeout"/>: the node is
/// taken to be down, and the owner is told to try again once another node has taken the agent over.
/// </summary>
public sealed class RedisAgentControl(RedisBus bus, ILogger<RedisAgentControl> logger) : IAgentControlRoute, IHostedService
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    /// <summary>A start waits for the runner's answer there (30 s at most).</summary>
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(40);
    private readonly ConcurrentDictionary<string, TaskCompletionSource<AgentResult>> _waiting = new();
    private Func<Caller, AgentCommand, Task<AgentResult>>? _carryOut;

    public void Serve(Func<Caller, AgentCommand, Task<AgentResult>> carryOut) => _carryOut = carryOut;

    public Task StartAsync(CancellationToken cancellationToken) => bus.SubscribeAsync("node:" + bus.Node, Heard);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task<AgentResult?> SendAsync(string holder, Caller caller, AgentCommand command, CancellationToken cancellationToken)
    {
        var id = Guid.NewGuid().ToString("N");
        var answer = new TaskCompletionSource<AgentResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        _waiting[id] = answer;
        try
        {
            var call = new NodeCall(id, bus.Node, IsReply: false,
                [caller.UserId, caller.TeamId, caller.SessionId, caller.Name, command.AgentId, command.Command, command.Data ?? ""]);
            if (!bus.Publish("node:" + holder, NodeCallCodec.Encode(call)))
            {
                return null;
            }
            return await answer.Task.WaitAsync(command.Command == AgentCommand.Start ? StartTimeout : Timeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            return null;
        }
        finally
        {
            _waiting.TryRemove(id, out _);
        }
    }

    private void Heard(RedisValue value)
    {
        if (NodeCallCodec.Decode((byte[])value!) is not { } call)
        {
            return;
        }
        if (call.IsReply)
        {
            if (_waiting.TryGetValue(call.Id, out var waiting) && call.Fields.Count == 2
                && Enum.TryParse<AgentFailure>(call.Fields[0], out var failure))
            {
                waiting.TrySetResult(failure == AgentFailure.None ? new AgentResult(null) : AgentResult.Fail(failure, call.Fields[1]));
            }
            return;
        }
        if (call.Fields.Count == 7)
        {
            _ = CarryOutAsync(call);
        }
    }

    private async Task CarryOutAsync(NodeCall call)
    {
        var f = call.Fields;
        var caller = new Caller(f[0], f[1], f[2], f[3]);
        AgentResult result;
        try
        {
            result = _carryOut is { } carryOut
                ? await carryOut(caller, new AgentCommand(f[4], f[5], f[6].Length > 0 ? f[6] : null))
                : AgentResult.Fail(AgentFailure.Unreachable, "The node that follows this agent is still starting; try again.");
        }
        catch (Exception e)
        {
            AgentsLog.CallFailed(logger, call.From, e);
            result = AgentResult.Fail(AgentFailure.Unreachable, "The node that follows this agent could not carry the command out; try again.");
        }
        var detail = result.Failure == AgentFailure.None ? "" : result.Detail ?? string.Join(" ", result.Errors?.SelectMany(e => e.Value) ?? []);
        bus.Publish("node:" + call.From, NodeCallCodec.Encode(new NodeCall(call.Id, bus.Node, IsReply: true,
            [result.Failure.ToString(), detail])));
    }
}
