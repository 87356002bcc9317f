using Covibe.Protocol;
using Covibe.Server.Features.Auth;
using Covibe.Server.Http;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Covibe.Server.Features.Agents;

/// <summary>
/// The team's budgets (issue 29): every member reads them with where the spend stands (<c>GET /api/team/budgets</c>); the
/// owner sets or removes one (<c>PUT</c>), within the operator's ceiling.
/// </summary>
public static class AgentBudgetsApi
{
    public static IEndpointRouteBuilder MapTeamBudgets(this IEndpointRouteBuilder app)
    {
        var budgets = app.MapGroup("/api/team/budgets").WithTags("Agents").RequireAuthorization();
        budgets.MapGet("", List);
        budgets.MapPut("", Set);
        return app;
    }

    public static async Task<Ok<TeamBudgetsResponse>> List(Caller caller, AgentBudgets budgets, CancellationToken cancellationToken) =>
        TypedResults.Ok(await budgets.ListAsync(caller, cancellationToken));

    public static async Task<Results<Ok<TeamBudgetsResponse>, ProblemHttpResult>> Set(
        SetBudgetRequest request, Caller caller, AgentBudgets budgets, CancellationToken cancellationToken)
    {
        var change = await budgets.SetAsync(caller, request, cancellationToken);
        return change.Budgets is { } set ? TypedResults.Ok(set) : AgentsApi.Refusal(new AgentResult(null, change.Failure, change.Detail, change.Errors));
    }
}
