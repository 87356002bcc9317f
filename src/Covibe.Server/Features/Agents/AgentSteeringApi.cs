using Covibe.Protocol;
using Covibe.Server.Features.Auth;
using Covibe.Server.Http;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Covibe.Server.Features.Agents;

/// <summary>
/// The team steers agents together (issue 26): an agent's permission prompts and the answers
/// (<c>/api/agent/{id}/approvals|approve|deny</c>), who controls it (<c>/api/agent/{id}/control...</c>), who did what
/// (<c>/api/agent/{id}/actions</c>), and the team's defaults (<c>/api/team/agent-settings</c>).
/// </summary>
public static class AgentSteeringApi
{
    public static RouteGroupBuilder MapAgentSteering(this RouteGroupBuilder api)
    {
        api.MapGet("/{id}/approvals", List);
        api.MapPost("/{id}/approve", Approve);
        api.MapPost("/{id}/deny", Deny);
        api.MapGet("/{id}/control", Controllers);
        api.MapPost("/{id}/control", Grant);
        api.MapDelete("/{id}/control/{userId}", Revoke);
        api.MapPost("/{id}/control/ask", Ask);
        api.MapPost("/{id}/control/take-over", TakeOver);
        api.MapGet("/{id}/actions", Actions);
        return api;
    }

    public static IEndpointRouteBuilder MapTeamAgentSettings(this IEndpointRouteBuilder app)
    {
        var team = app.MapGroup("/api/team/agent-settings").WithTags("Agents").RequireAuthorization();
        team.MapGet("", GetSettings);
        team.MapPut("", PutSettings);
        return app;
    }

    public static async Task<Results<Ok<AgentControllersResponse>, ProblemHttpResult>> Controllers(string id, Caller caller, AgentHandover handover, CancellationToken cancellationToken) =>
        Handed(await handover.ListAsync(caller, id, cancellationToken));

    public static async Task<Results<Ok<AgentControllersResponse>, ProblemHttpResult>> Grant(
        string id, GrantControlRequest request, Caller caller, AgentHandover handover, CancellationToken cancellationToken) =>
        Handed(await handover.GrantAsync(caller, id, request, cancellationToken));

    /// <summary><paramref name="userId"/>: the member, or <c>*</c> (the whole team).</summary>
    public static async Task<Results<Ok<AgentControllersResponse>, ProblemHttpResult>> Revoke(
        string id, string userId, Caller caller, AgentHandover handover, CancellationToken cancellationToken) =>
        Handed(await handover.RevokeAsync(caller, id, userId, cancellationToken));

    public static async Task<Results<Ok<AgentControllersResponse>, ProblemHttpResult>> Ask(string id, Caller caller, AgentHandover handover, CancellationToken cancellationToken) =>
        Handed(await handover.AskAsync(caller, id, cancellationToken));

    public static async Task<Results<Ok<AgentControllersResponse>, ProblemHttpResult>> TakeOver(string id, Caller caller, AgentHandover handover, CancellationToken cancellationToken) =>
        Handed(await handover.TakeOverAsync(caller, id, cancellationToken));

    /// <summary>Who did what to the agent, from position <c>from</c> (default 0) in its output.</summary>
    public static async Task<Results<Ok<AgentActionsResponse>, ProblemHttpResult>> Actions(
        string id, long? from, Caller caller, AgentService agents, AgentActions actions, CancellationToken cancellationToken) =>
        await agents.FindForReadingAsync(caller, id, cancellationToken) is null
            ? Problems.NotFound("Agent", $"Your team has no agent '{id}'. List them with GET /api/agent/list.")
            : TypedResults.Ok(new AgentActionsResponse(await actions.FromAsync(id, Math.Max(0, from ?? 0), cancellationToken)));

    public static async Task<Ok<TeamAgentSettings>> GetSettings(Caller caller, AgentHandover handover, CancellationToken cancellationToken) =>
        TypedResults.Ok(await handover.SettingsAsync(caller, cancellationToken));

    public static async Task<Results<Ok<TeamAgentSettings>, ProblemHttpResult>> PutSettings(
        TeamAgentSettings settings, Caller caller, AgentHandover handover, Microsoft.Extensions.Options.IOptions<AgentsOptions> options, CancellationToken cancellationToken)
    {
        var (saved, failure, detail) = await handover.SetSettingsAsync(caller, settings, options.Value.Permissions.AllowBypass, cancellationToken);
        return saved is not null ? TypedResults.Ok(saved) : Refused(failure, detail!);
    }

    private static Results<Ok<AgentControllersResponse>, ProblemHttpResult> Handed(HandoverResult result) =>
        result.Controllers is { } controllers ? TypedResults.Ok(controllers) : Refused(result.Failure, result.Detail!);

    private static ProblemHttpResult Refused(AgentFailure failure, string detail) =>
        failure == AgentFailure.Invalid ? Problems.ValidationAsProblem(new() { ["request"] = [detail] }) : AgentsApi.Refusal(new AgentResult(null, failure, detail));

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
        result.Request is { } request ? TypedResults.Ok(request) : Refused(result.Failure, result.Detail!);
}
