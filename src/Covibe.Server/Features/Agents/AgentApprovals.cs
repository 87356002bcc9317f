using System.Collections.Concurrent;
using System.Text.Json;
using System.Threading.Channels;
using Covibe.Execution;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Events;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Agents;

/// <summary>Prompts seen in the output of an agent this node follows, with where to write the answers; or the agent's end.</summary>
public sealed record PromptBatch(string AgentId, IExecutionBackend Backend, AgentProcess Process, AgentEvent[] Prompts, bool Ended = false);

/// <summary>The way from the node that reads an agent's output to <see cref="AgentApprovals"/>: in order, never blocking the reader.</summary>
public sealed class AgentPrompts
{
    private readonly Channel<PromptBatch> _batches = Channel.CreateUnbounded<PromptBatch>(new() { SingleReader = true });

    public void Seen(PromptBatch batch) => _batches.Writer.TryWrite(batch);

    internal ChannelReader<PromptBatch> Reader => _batches.Reader;
}

/// <summary>
/// The team answers an agent's permission prompts (issue 26; Claude's <c>--permission-prompt-tool stdio</c>, STREAM_JSON.md
/// 7.3). A prompt seen in the output is kept (<see cref="PermissionPrompt"/>), decided at once when a rule or the mode says
/// so, else told to the team and left to whoever controls the agent, until its deadline denies it. Exactly one answer
/// counts: it is claimed in the database before it goes to the agent. The node that follows the agent keeps the deadlines;
/// one that takes the agent over reads its output again and finds each prompt where it was (an answer given but maybe not
/// written is written again: Claude ignores a second answer to the same request).
/// </summary>
public sealed partial class AgentApprovals(
    IDbContextFactory<CovibeDb> dbs,
    AgentPrompts prompts,
    AgentService agents,
    AgentControl control,
    AgentEvents agentEvents,
    AgentActions actions,
    Push.PushService push,
    ITeamEvents events,
    IOptions<AgentsOptions> options,
    TimeProvider time,
    ILogger<AgentApprovals> logger) : BackgroundService
{
    private readonly ConcurrentDictionary<(string Agent, string Request), CancellationTokenSource> _deadlines = new();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var batch in prompts.Reader.ReadAllAsync(stoppingToken))
            {
                try
                {
                    await HandleAsync(batch, stoppingToken);
                }
                catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
                {
                    AgentsLog.PromptFailed(logger, batch.AgentId, e);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task HandleAsync(PromptBatch batch, CancellationToken cancellationToken)
    {
        foreach (var prompt in batch.Prompts)
        {
            if (prompt.Kind == "permission_cancel")
            {
                await WithdrawAsync(batch.AgentId, prompt.RequestId, cancellationToken);
            }
            else
            {
                await SeenAsync(batch, prompt, cancellationToken);
            }
        }
        if (batch.Ended)
        {
            await WithdrawAsync(batch.AgentId, null, cancellationToken);
        }
    }

    private async Task SeenAsync(PromptBatch batch, AgentEvent prompt, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var known = await db.AgentPermissions.AsNoTracking().SingleOrDefaultAsync(p => p.AgentId == batch.AgentId && p.RequestId == prompt.RequestId, cancellationToken);
        if (known is not null)
        {
            // Seen before (its output read again): answered, so say it again; still waiting, so wait for its deadline here.
            if (known.Status == PermissionStatuses.Pending)
            {
                WatchDeadline(batch, known);
            }
            else if (known.Status != PermissionStatuses.Withdrawn)
            {
                await WriteAsync(batch, known, cancellationToken);
            }
            return;
        }
        var agent = await db.Agents.AsNoTracking().SingleOrDefaultAsync(a => a.Id == batch.AgentId, cancellationToken);
        if (agent is null)
        {
            return;
        }
        var input = prompt.Input ?? JsonDocument.Parse("{}").RootElement;
        var frame = options.Value.Permissions;
        var mode = agent.PermissionMode ?? frame.Mode;
        if (mode == PermissionModes.Bypass && !frame.AllowBypass)
        {
            mode = PermissionModes.Ask; // the operator took bypass away since
        }
        var (verdict, reason) = PermissionDecisions.Decide(mode, frame.DenyRules, frame.AllowRules, Rules(agent.AllowedRules), prompt.Tool ?? "", input);
        var now = time.GetUtcNow().UtcDateTime;
        var row = new PermissionPrompt
        {
            AgentId = agent.Id,
            RequestId = prompt.RequestId!,
            TeamId = agent.TeamId,
            Tool = prompt.Tool ?? "",
            ToolUseId = prompt.ToolUseId,
            Input = input.GetRawText(),
            Suggestions = prompt.Suggestions?.GetRawText(),
            Description = prompt.Text is { Length: > 500 } text ? text[..500] : prompt.Text,
            Position = prompt.Position,
            AskedAt = now,
            Deadline = now.AddSeconds(options.Value.ApprovalTimeoutSeconds),
            Status = verdict switch
            {
                PermissionVerdict.Allow => PermissionStatuses.Allowed,
                PermissionVerdict.Deny => PermissionStatuses.Denied,
                _ => PermissionStatuses.Pending,
            },
            Reason = reason,
            Message = verdict == PermissionVerdict.Deny ? $"Denied by {reason}." : null,
            DecidedAt = verdict == PermissionVerdict.Ask ? null : now,
        };
        db.AgentPermissions.Add(row);
        await db.SaveChangesAsync(cancellationToken);
        if (verdict != PermissionVerdict.Ask)
        {
            await WriteAsync(batch, row, cancellationToken);
            AgentsLog.PromptDecided(logger, agent.Id, row.Tool, row.Status, reason!);
            events.Publish(agent.TeamId, new AgentPermissionAnsweredMessage(ToDto(row, null)));
            await RecordAsync(row, null, null, $"{Verb(row)} {Summary(row)} ({reason})", cancellationToken);
            return;
        }
        AgentsLog.PromptAsked(logger, agent.Id, row.Tool, row.RequestId);
        // Counted first: whoever hears of the request finds the agent "waiting for approval" in the list.
        await RecountAsync(agent.Id, cancellationToken);
        var controllers = await control.ControllersAsync(agent.Id, agent.UserId, cancellationToken);
        var dto = ToDto(row, null);
        events.Publish(agent.TeamId, controllers, canAnswer => new AgentPermissionRequestMessage(dto, canAnswer));
        // A phone with the page closed hears it too (those who subscribed).
        push.Notify(controllers, agent.TeamId, new PushNote($"An agent asks to use {row.Tool}", $"{Summary(row)}\n{Shorten(agent.Task)}",
            $"/?agent={agent.Id}", row.RequestId, agent.Id, row.RequestId));
        WatchDeadline(batch, row);
    }

    /// <summary>Takes the answer if nobody has: one conditional update, so two members answering at once never both count.</summary>
    private async Task<PermissionPrompt?> ClaimAsync(CovibeDb db, PermissionPrompt row, string status, string? by, string? reason, string? message, string? updatedInput, string? rule, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var taken = await db.AgentPermissions
            .Where(p => p.AgentId == row.AgentId && p.RequestId == row.RequestId && p.Status == PermissionStatuses.Pending)
            .ExecuteUpdateAsync(s => s
                .SetProperty(p => p.Status, status)
                .SetProperty(p => p.DecidedBy, by)
                .SetProperty(p => p.Reason, reason)
                .SetProperty(p => p.Message, message)
                .SetProperty(p => p.UpdatedInput, updatedInput)
                .SetProperty(p => p.Rule, rule)
                .SetProperty(p => p.DecidedAt, now), cancellationToken);
        return taken == 0 ? null : await db.AgentPermissions.AsNoTracking().SingleAsync(p => p.AgentId == row.AgentId && p.RequestId == row.RequestId, cancellationToken);
    }

    private void WatchDeadline(PromptBatch batch, PermissionPrompt row)
    {
        var stop = new CancellationTokenSource();
        if (!_deadlines.TryAdd((row.AgentId, row.RequestId), stop))
        {
            stop.Dispose();
            return;
        }
        _ = TimeOutAsync(batch, row, stop.Token);
    }

    private void StopDeadline(string agentId, string requestId)
    {
        if (_deadlines.TryRemove((agentId, requestId), out var stop))
        {
            stop.Cancel();
            stop.Dispose();
        }
    }

    private async Task TimeOutAsync(PromptBatch batch, PermissionPrompt row, CancellationToken cancellationToken)
    {
        try
        {
            var wait = row.Deadline - time.GetUtcNow().UtcDateTime;
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, time, cancellationToken);
            }
            _deadlines.TryRemove((row.AgentId, row.RequestId), out _);
            await using var db = await dbs.CreateDbContextAsync(CancellationToken.None);
            var seconds = options.Value.ApprovalTimeoutSeconds;
            var claimed = await ClaimAsync(db, row, PermissionStatuses.TimedOut, null, $"nobody answering within {seconds} s",
                $"Nobody on the team answered this permission request within {seconds} s, so it was denied. Go on without it if you can, and say what you needed in your summary.",
                null, null, CancellationToken.None);
            if (claimed is null)
            {
                // Answered meanwhile, maybe on another node whose word did not get here: say it to the agent now (again, at worst).
                var decided = await db.AgentPermissions.AsNoTracking().SingleAsync(p => p.AgentId == row.AgentId && p.RequestId == row.RequestId, CancellationToken.None);
                if (decided.Status is PermissionStatuses.Allowed or PermissionStatuses.Denied)
                {
                    await WriteAsync(batch, decided, CancellationToken.None);
                }
                return;
            }
            AgentsLog.PromptTimedOut(logger, row.AgentId, row.Tool, seconds);
            await WriteAsync(batch, claimed, CancellationToken.None);
            await RecordAsync(claimed, null, null, $"denied {Summary(claimed)}: nobody answered within {seconds} s", CancellationToken.None);
            events.Publish(row.TeamId, new AgentPermissionAnsweredMessage(ToDto(claimed, null)));
            await RecountAsync(row.AgentId, CancellationToken.None);
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e)
        {
            AgentsLog.PromptFailed(logger, row.AgentId, e);
        }
    }

    /// <summary>The agent stopped waiting for one request (<paramref name="requestId"/>) or, when it ended, for all of them.</summary>
    private async Task WithdrawAsync(string agentId, string? requestId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var pending = await db.AgentPermissions.AsNoTracking()
            .Where(p => p.AgentId == agentId && p.Status == PermissionStatuses.Pending && (requestId == null || p.RequestId == requestId))
            .ToListAsync(cancellationToken);
        foreach (var row in pending)
        {
            StopDeadline(agentId, row.RequestId);
            if (await ClaimAsync(db, row, PermissionStatuses.Withdrawn, null, requestId is null ? "the agent ended" : "the agent stopped waiting for it", null, null, null, cancellationToken) is { } withdrawn)
            {
                events.Publish(row.TeamId, new AgentPermissionAnsweredMessage(ToDto(withdrawn, null)));
            }
        }
        if (pending.Count > 0)
        {
            await RecountAsync(agentId, cancellationToken);
        }
    }

    private static async Task WriteAsync(PromptBatch batch, PermissionPrompt row, CancellationToken cancellationToken)
    {
        try
        {
            await batch.Backend.WriteInputAsync(batch.Process, PermissionAnswers.Line(row), cancellationToken);
        }
        catch (AgentNotRunningException)
        {
            // It has ended meanwhile: nothing waits for the answer any more.
        }
    }

    /// <summary>Counts the agent's waiting requests into its row, and tells the team (its list shows "waiting for approval").</summary>
    private async Task RecountAsync(string agentId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var pending = await db.AgentPermissions.CountAsync(p => p.AgentId == agentId && p.Status == PermissionStatuses.Pending, cancellationToken);
        var agent = await db.Agents.SingleAsync(a => a.Id == agentId, cancellationToken);
        if (agent.PendingApprovals != pending)
        {
            agent.PendingApprovals = pending;
            await db.SaveChangesAsync(cancellationToken);
            await agentEvents.StatusChangedAsync(agent, cancellationToken);
        }
    }

    /// <summary>In the agent's stream, just after the prompt it answers.</summary>
    private Task<AgentActionDto> RecordAsync(PermissionPrompt row, string? userId, string? userName, string text, CancellationToken cancellationToken) =>
        actions.RecordAsync(row.AgentId, row.TeamId, row.Position + 1, userId, userName,
            row.Status == PermissionStatuses.Allowed ? AgentActionKinds.Allow : AgentActionKinds.Deny, text, cancellationToken);

    private static string Shorten(string text) => text.Length <= 120 ? text : text[..120] + "…";

    private static string Verb(PermissionPrompt row) => row.Status == PermissionStatuses.Allowed ? "allowed" : "denied";

    private static string Summary(PermissionPrompt row)
    {
        using var input = JsonDocument.Parse(row.Input);
        return PermissionText.Summary(row.Tool, input.RootElement);
    }

    internal static IEnumerable<PermissionRule> Rules(string? lines) =>
        (lines ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(r => PermissionRule.Parse(r, out _)).OfType<PermissionRule>();

    public static AgentPermissionDto ToDto(PermissionPrompt row, string? decidedByName)
    {
        using var input = JsonDocument.Parse(row.Input);
        using var suggestions = row.Suggestions is null ? null : JsonDocument.Parse(row.Suggestions);
        return new AgentPermissionDto(row.AgentId, row.RequestId, row.Tool, input.RootElement.Clone(), suggestions?.RootElement.Clone(), row.Description,
            row.Position, row.AskedAt, row.Deadline, row.Status, row.DecidedBy, decidedByName, row.Reason, row.Message, row.Rule is not null, row.DecidedAt);
    }
}
