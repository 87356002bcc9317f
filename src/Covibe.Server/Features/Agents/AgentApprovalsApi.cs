using Covibe.Protocol;
using Covibe.Server.Features.Auth;
using Covibe.Server.Http;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Covibe.Server.Features.Agents;

/// <summary><c>/api/agent/{id}/approvals|approve|deny</c>: an agent's permission prompts, and the team's answers (issue 26).</summary>
public static class AgentApprovalsApi
{
    public static RouteGroupBuilder MapAgentApprovals(this RouteGroupBuilder api)
    {
        api.MapGet("/{id}/approvals", List);
        api.MapPost("/{id}/approve", Approve);
        api.MapPost("/{id}/deny", Deny);
        return api;
    }

    public static async Task<Results<Ok<AgentPermissionsResponse>, ProblemHttpResult>> List(
        string id, Caller caller, AgentApprovals approvals, CancellationToken cancellationToken) =>
        await approvals.ListAsync(caller, id, cancellationToken) is { Requests: { } requests }
            ? TypedResults.Ok(new AgentPermissionsResponse(requests))
            : Problems.NotFound("Agent", $"Your team has no agent '{id}'. List them with GET /api/agent/list.");

    public static async Task<Results<Ok<AgentPermissionDto>, ProblemHttpResult>> Approve(
        string id, ApproveRequest? request, Caller caller, AgentApprovals approvals, CancellationToken cancellationToken) =>
        Answer(await approvals.AnswerAsync(caller, id,
            new PermissionAnswer(request?.RequestId, Allow: true, request?.Always ?? false, request?.Suggestion, request?.UpdatedInput), cancellationToken));

    public static async Task<Results<Ok<AgentPermissionDto>, ProblemHttpResult>> Deny(
        string id, DenyRequest? request, Caller caller, AgentApprovals approvals, CancellationToken cancellationToken) =>
        Answer(await approvals.AnswerAsync(caller, id, new PermissionAnswer(request?.RequestId, Allow: false, Message: request?.Message), cancellationToken));

    private static Results<Ok<AgentPermissionDto>, ProblemHttpResult> Answer(PermissionResult result) =>
        result.Request is { } request
            ? TypedResults.Ok(request)
            : result.Failure == AgentFailure.Invalid
                ? Problems.ValidationAsProblem(new() { ["request"] = [result.Detail!] })
                : AgentsApi.Refusal(new AgentResult(null, result.Failure, result.Detail));
}
