using System.Text;
using Covibe.Execution;
using Covibe.Protocol;
using Covibe.Server.Features.Auth;
using Covibe.Server.Hosting;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Agents;

/// <summary>Controlling a running agent: by whoever controls it (<see cref="AgentControl"/>), carried out by the node that follows it.</summary>
public sealed partial class AgentService
{
    /// <summary>Like Ctrl-C; for a conversational agent, a stream-json interrupt request that ends the current turn.</summary>
    public Task<AgentResult> InterruptAsync(Caller caller, string agentId, CancellationToken cancellationToken) =>
        RecordedAsync(caller, new AgentCommand(agentId, "interrupt"), AgentActionKinds.Interrupt, "interrupted it", cancellationToken);

    /// <summary>Writes to stdin; for a conversational agent, as a user message that starts its next turn.</summary>
    public Task<AgentResult> InputAsync(Caller caller, string agentId, string data, CancellationToken cancellationToken) =>
        RecordedAsync(caller, new AgentCommand(agentId, "input", data), AgentActionKinds.Input, $"sent: {data.Trim().ReplaceLineEndings(" ")}", cancellationToken);

    /// <summary>Closes the agent's input: it reads EOF and, if it reads to the end (a conversation), finishes.</summary>
    public Task<AgentResult> EndInputAsync(Caller caller, string agentId, CancellationToken cancellationToken) =>
        RecordedAsync(caller, new AgentCommand(agentId, "end"), AgentActionKinds.End, "ended its input", cancellationToken);

    /// <summary>A member's command, carried out and then recorded in the agent's stream (who, what, where in its output).</summary>
    private async Task<AgentResult> RecordedAsync(Caller caller, AgentCommand command, string kind, string text, CancellationToken cancellationToken)
    {
        // Where the output was when it was done: an echo of the input comes after it, not before.
        var at = actions.PositionNow(command.AgentId);
        var result = await ControlAsync(caller, command, cancellationToken);
        if (result.Agent is { } agent)
        {
            await actions.RecordAsync(agent.Id, agent.TeamId, at ?? agent.OutputBytes, caller.UserId, caller.Name, kind, text, CancellationToken.None);
        }
        return result;
    }

    /// <summary>
    /// The owner's command, carried out by the node that follows the agent: here, or sent to that node (several nodes).
    /// <paramref name="here"/>: a command another node sent to this one (it checked it too), carried out here.
    /// </summary>
    public async Task<AgentResult> ControlAsync(Caller caller, AgentCommand command, CancellationToken cancellationToken, bool here = false)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var agent = await db.Agents.SingleOrDefaultAsync(a => a.Id == command.AgentId && a.TeamId == caller.TeamId, cancellationToken);
        if (agent is null)
        {
            return NotFound(command.AgentId);
        }
        if (!await control.AllowsAsync(agent, caller.UserId, cancellationToken))
        {
            return AgentResult.Fail(AgentFailure.Forbidden, AgentControl.Refused);
        }
        if (AgentStatuses.IsFinal(agent.Status) || agent.Process is not { } process)
        {
            return AgentResult.Fail(AgentFailure.NotRunning, $"The agent has already finished ({agent.Status}).");
        }
        if (!here && !supervisor.Follows(agent.Id) && await leases.HolderAsync(agent.Id, cancellationToken) is { } holder && holder != leases.Node)
        {
            return await route.SendAsync(holder, caller, command, cancellationToken) switch
            {
                null => AgentResult.Fail(AgentFailure.Unreachable,
                    $"The server node that follows this agent did not answer. If it is down, another node takes the agent over within {leases.Duration.TotalSeconds + leases.Interval.TotalSeconds:0} s; try again then."),
                { Failure: AgentFailure.None } => await GetAsync(caller, command.AgentId, cancellationToken), // done there; the agent as this caller sees it
                var failed => failed,
            };
        }
        var backend = backends.Get(agent.Backend);
        try
        {
            switch (command.Command)
            {
                case "kill":
                    agent.KillRequested = true;
                    await db.SaveChangesAsync(cancellationToken);
                    await backend.SignalAsync(process, AgentSignal.Terminate, cancellationToken);
                    supervisor.KillRequested(agent.Id);
                    break;
                case AgentCommand.Answer:
                    var decided = await db.AgentPermissions.AsNoTracking().SingleOrDefaultAsync(p => p.AgentId == agent.Id && p.RequestId == command.Data, cancellationToken);
                    if (decided is null || decided.Status is PermissionStatuses.Pending or PermissionStatuses.Withdrawn)
                    {
                        return AgentResult.Fail(AgentFailure.Invalid, "There is no decided permission request with that id.");
                    }
                    await backend.WriteInputAsync(process, PermissionAnswers.Line(decided), cancellationToken);
                    break;
                case "interrupt" when launcher.IsStreamJson(agent.Type):
                    await backend.WriteInputAsync(process, StreamJsonInput.Interrupt("req_" + Tokens.NewId()), cancellationToken);
                    break;
                case "interrupt":
                    await backend.SignalAsync(process, AgentSignal.Interrupt, cancellationToken);
                    break;
                case "input" when launcher.IsConversational(agent.Type):
                    // Running before the message goes in: the turn's result (which sets waiting) can only come after.
                    if (agent.Status == AgentStatuses.Waiting)
                    {
                        agent.Status = AgentStatuses.Running;
                        await db.SaveChangesAsync(cancellationToken);
                        await events.StatusChangedAsync(agent, cancellationToken);
                    }
                    await backend.WriteInputAsync(process, StreamJsonInput.UserMessage(command.Data ?? ""), cancellationToken);
                    break;
                case "input" when launcher.IsStreamJson(agent.Type):
                    await backend.WriteInputAsync(process, StreamJsonInput.UserMessage(command.Data ?? ""), cancellationToken);
                    break;
                case "input":
                    await backend.WriteInputAsync(process, Encoding.UTF8.GetBytes(command.Data ?? ""), cancellationToken);
                    break;
                case "end":
                    await backend.CloseInputAsync(process, cancellationToken);
                    break;
                default:
                    return AgentResult.Fail(AgentFailure.Invalid, $"Unknown command '{command.Command}'. Use kill, interrupt, input or end.");
            }
        }
        catch (AgentNotRunningException e)
        {
            return AgentResult.Fail(AgentFailure.NotRunning, e.Message);
        }
        catch (PlaceUnreachableException e)
        {
            if (agent.KillRequested && command.Command == "kill")
            {
                // Not carried out, so not left for the supervisor to carry out later: the owner decides again.
                agent.KillRequested = false;
                await db.SaveChangesAsync(CancellationToken.None);
            }
            return AgentResult.Fail(AgentFailure.PlaceUnreachable, $"{e.Message} The agent's '{command.Command}' was not carried out; try again once it is back (GET /health shows the engine).");
        }
        AgentsLog.Controlled(logger, agent.Id, command.Command, caller.UserId);
        if (backend.Remote)
        {
            await audit.AgentAsync(agent.Target, agent.TeamId, caller.UserId, $"agent.{command.Command}", $"agent {agent.Id}", cancellationToken);
        }
        // Someone it was handed to: the agent with its owner's name.
        return agent.UserId == caller.UserId ? new AgentResult(events.ToDto(agent, caller.Name, canControl: true)) : await GetAsync(caller, agent.Id, cancellationToken);
    }
}
