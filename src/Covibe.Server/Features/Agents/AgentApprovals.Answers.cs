using System.Text.Json;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Auth;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Agents;

/// <summary>The team's answers to an agent's prompts, and the list of them.</summary>
public sealed partial class AgentApprovals
{
    /// <summary>A member's answer: only someone who controls the agent; only the first answer to a prompt counts.</summary>
    public async Task<PermissionResult> AnswerAsync(Caller caller, string agentId, PermissionAnswer answer, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var agent = await db.Agents.AsNoTracking().SingleOrDefaultAsync(a => a.Id == agentId && a.TeamId == caller.TeamId, cancellationToken);
        if (agent is null)
        {
            return PermissionResult.Fail(AgentFailure.NotFound, $"Your team has no agent '{agentId}'. List them with GET /api/agent/list.");
        }
        if (!await control.AllowsAsync(agent, caller.UserId, cancellationToken))
        {
            return PermissionResult.Fail(AgentFailure.Forbidden, AgentControl.Refused);
        }
        var row = answer.RequestId is { } requestId
            ? await db.AgentPermissions.AsNoTracking().SingleOrDefaultAsync(p => p.AgentId == agentId && p.RequestId == requestId, cancellationToken)
            : await db.AgentPermissions.AsNoTracking().Where(p => p.AgentId == agentId && p.Status == PermissionStatuses.Pending).OrderBy(p => p.Position).FirstOrDefaultAsync(cancellationToken);
        if (row is null)
        {
            return PermissionResult.Fail(AgentFailure.NotFound, answer.RequestId is null
                ? "The agent is not waiting for an answer (GET /api/agent/{id}/approvals lists its requests)."
                : $"The agent has no permission request '{answer.RequestId}'.");
        }
        if (row.Status != PermissionStatuses.Pending)
        {
            return await AnsweredAlreadyAsync(db, row, cancellationToken);
        }
        PermissionRule? rule = null;
        if (answer.Allow && answer.Suggestion is { } index)
        {
            rule = SuggestedRule(row, index);
            if (rule is null)
            {
                return PermissionResult.Fail(AgentFailure.Invalid, $"The request has no suggested rule {index} (its suggestions are in 'suggestions', counted from 0).");
            }
        }
        else if (answer.Allow && answer.Always)
        {
            rule = new PermissionRule(row.Tool, null);
        }
        if (answer.UpdatedInput is { } updated && updated.ValueKind != JsonValueKind.Object)
        {
            return PermissionResult.Fail(AgentFailure.Invalid, "'updatedInput' must be an object: the tool's input, as in the request's 'input'.");
        }
        var message = answer.Allow ? null : string.IsNullOrWhiteSpace(answer.Message)
            ? $"{caller.Name} denied this."
            : answer.Message.Trim().Length > 2000 ? answer.Message.Trim()[..2000] : answer.Message.Trim();
        var claimed = await ClaimAsync(db, row, answer.Allow ? PermissionStatuses.Allowed : PermissionStatuses.Denied, caller.UserId, null, message,
            answer.UpdatedInput?.GetRawText(), rule?.ToString(), cancellationToken);
        if (claimed is null)
        {
            return await AnsweredAlreadyAsync(db, row, cancellationToken);
        }
        if (rule is not null)
        {
            await AddRuleAsync(db, agentId, rule, cancellationToken);
        }
        StopDeadline(agentId, row.RequestId);
        AgentsLog.PromptAnswered(logger, agentId, row.Tool, claimed.Status, caller.UserId);
        // To the node that follows the agent (here, or through the cluster); the answer stands even if the agent has ended.
        var delivered = await agents.ControlAsync(caller, new AgentCommand(agentId, AgentCommand.Answer, row.RequestId), cancellationToken);
        if (delivered.Failure is not (AgentFailure.None or AgentFailure.NotRunning))
        {
            AgentsLog.AnswerNotDelivered(logger, agentId, row.RequestId, delivered.Detail ?? delivered.Failure.ToString());
        }
        var dto = ToDto(claimed, caller.Name);
        events.Publish(agent.TeamId, new AgentPermissionAnsweredMessage(dto));
        var how = answer.Allow
            ? (rule is null ? "" : $", from now on ({rule})") + (answer.UpdatedInput is null ? "" : $", as {PermissionText.Summary(row.Tool, answer.UpdatedInput.Value)}")
            : string.IsNullOrWhiteSpace(answer.Message) ? "" : $": {message}";
        await RecordAsync(claimed, caller.UserId, caller.Name, $"{Verb(claimed)} {Summary(claimed)}{how}", CancellationToken.None);
        await RecountAsync(agentId, cancellationToken);
        return new PermissionResult(dto);
    }

    /// <summary>An agent's requests, newest last (at most the last 500).</summary>
    public async Task<PermissionsResult> ListAsync(Caller caller, string agentId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        if (!await db.Agents.AnyAsync(a => a.Id == agentId && a.TeamId == caller.TeamId, cancellationToken))
        {
            return new PermissionsResult(null, $"Your team has no agent '{agentId}'. List them with GET /api/agent/list.");
        }
        var rows = await (from p in db.AgentPermissions
                          where p.AgentId == agentId
                          join u in db.Users on p.DecidedBy equals u.Id into deciders
                          from u in deciders.DefaultIfEmpty()
                          orderby p.Position descending
                          select new { p, Name = u == null ? null : u.Name }).Take(500).ToListAsync(cancellationToken);
        return new PermissionsResult([.. rows.Select(r => ToDto(r.p, r.Name)).Reverse()]);
    }

    private static async Task<PermissionResult> AnsweredAlreadyAsync(CovibeDb db, PermissionPrompt row, CancellationToken cancellationToken)
    {
        var now = await db.AgentPermissions.AsNoTracking().SingleAsync(p => p.AgentId == row.AgentId && p.RequestId == row.RequestId, cancellationToken);
        var by = now.DecidedBy is { } userId ? await db.Users.Where(u => u.Id == userId).Select(u => u.Name).SingleOrDefaultAsync(cancellationToken) : null;
        var what = now.Status switch
        {
            PermissionStatuses.Allowed => $"allowed by {by ?? now.Reason}",
            PermissionStatuses.Denied => $"denied by {by ?? now.Reason}",
            PermissionStatuses.TimedOut => "denied: nobody answered in time",
            _ => "withdrawn: the agent stopped waiting for it",
        };
        return new PermissionResult(null, AgentFailure.AlreadyAnswered, $"This request was {what} ({now.Tool}).");
    }

    private static async Task AddRuleAsync(CovibeDb db, string agentId, PermissionRule rule, CancellationToken cancellationToken)
    {
        var agent = await db.Agents.SingleAsync(a => a.Id == agentId, cancellationToken);
        var rules = Rules(agent.AllowedRules).Select(r => r.ToString()).ToList();
        if (!rules.Contains(rule.ToString()))
        {
            agent.AllowedRules = string.Join('\n', [.. rules, rule.ToString()]);
            await db.SaveChangesAsync(cancellationToken);
        }
    }

    private static PermissionRule? SuggestedRule(PermissionPrompt row, int index)
    {
        if (row.Suggestions is null)
        {
            return null;
        }
        using var suggestions = JsonDocument.Parse(row.Suggestions);
        if (suggestions.RootElement.ValueKind != JsonValueKind.Array || index < 0 || index >= suggestions.RootElement.GetArrayLength())
        {
            return null;
        }
        var suggestion = suggestions.RootElement[index];
        if (!suggestion.TryGetProperty("rules", out var rules) || rules.ValueKind != JsonValueKind.Array || rules.GetArrayLength() == 0)
        {
            return null;
        }
        var first = rules[0];
        var tool = first.TryGetProperty("toolName", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        var content = first.TryGetProperty("ruleContent", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null;
        return tool is null ? null : new PermissionRule(tool, content);
    }
}
