using Covibe.Protocol;
using Covibe.Server.Features.Auth;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.ModelBinding;

namespace Covibe.Server.Features.Changes;

/// <summary>
/// <c>/api/agent/{id}/changes</c>: what an agent on the team's repository has changed, for every member of its team (the
/// summary; <c>/diff?path=</c> a file's unified diff, or all of them). Live, the hub's <c>agent_changes</c> says the same.
/// </summary>
public static class ChangesApi
{
    public static IServiceCollection AddChanges(this IServiceCollection services)
    {
        services.AddSingleton<AgentChanges>();
        services.AddSingleton<AgentTrees>();
        services.AddSingleton<AgentBranchActions>();
        services.AddSingleton<ChangesWatch>();
        services.AddHostedService(sp => sp.GetRequiredService<ChangesWatch>());
        return services;
    }

    public static IEndpointRouteBuilder MapChangesApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/agent/{id}/changes").WithTags("Agents").RequireAuthorization();
        api.MapGet("", Summary);
        api.MapGet("/diff", Diff);
        app.MapPost("/api/agent/{id}/discard", Discard).WithTags("Agents").RequireAuthorization();
        app.MapPost("/api/agent/{id}/commit", Commit).WithTags("Agents").RequireAuthorization();
        app.MapPost("/api/agent/{id}/push", Push).WithTags("Agents").RequireAuthorization();
        app.MapPost("/api/agent/{id}/merge", Merge).WithTags("Agents").RequireAuthorization();
        app.MapPost("/api/agent/{id}/update", Update).WithTags("Agents").RequireAuthorization();
        app.MapGet("/api/team/worktrees", Worktrees).WithTags("Team").RequireAuthorization();
        return app;
    }

    /// <summary>The agent's owner, once it ended: its work tree removed and its branch deleted.</summary>
    public static async Task<Ok<AgentDto>> Discard(string id, Caller caller, AgentTrees trees, CancellationToken cancellationToken) =>
        TypedResults.Ok(await trees.DiscardAsync(caller, id, cancellationToken));

    /// <summary>Whoever controls the agent: its work as it is now, committed on its branch (the body may be empty: the message proposed).</summary>
    public static async Task<Ok<AgentBranchResponse>> Commit(string id, [FromBody(EmptyBodyBehavior = EmptyBodyBehavior.Allow)] AgentCommitRequest? request, Caller caller,
        AgentBranchActions actions, CancellationToken cancellationToken) =>
        TypedResults.Ok(await actions.CommitAsync(caller, id, request?.Message, cancellationToken));

    public static async Task<Ok<AgentBranchResponse>> Push(string id, Caller caller, AgentBranchActions actions, CancellationToken cancellationToken) =>
        TypedResults.Ok(await actions.PushAsync(caller, id, cancellationToken));

    /// <summary>Whoever controls the agent: its branch merged into its base branch in the team's repository (a conflict: 409 with the files).</summary>
    public static async Task<Ok<AgentMergeResponse>> Merge(string id, Caller caller, AgentBranchActions actions, CancellationToken cancellationToken) =>
        TypedResults.Ok(await actions.MergeAsync(caller, id, cancellationToken));

    /// <summary>Whoever controls the agent: the base branch's newest commit brought into its branch and tree.</summary>
    public static async Task<Ok<AgentUpdateResponse>> Update(string id, Caller caller, AgentBranchActions actions, CancellationToken cancellationToken) =>
        TypedResults.Ok(await actions.UpdateAsync(caller, id, cancellationToken));

    public static async Task<Ok<TeamWorktreesResponse>> Worktrees(Caller caller, AgentTrees trees, CancellationToken cancellationToken) =>
        TypedResults.Ok(await trees.DiskAsync(caller, cancellationToken));

    public static async Task<Ok<AgentChangesDto>> Summary(string id, Caller caller, AgentChanges changes, CancellationToken cancellationToken) =>
        TypedResults.Ok((await changes.ReadAsync(await changes.FindAsync(caller, id, cancellationToken), cancellationToken))!);

    public static async Task<ContentHttpResult> Diff(string id, string? path, Caller caller, AgentChanges changes, CancellationToken cancellationToken) =>
        TypedResults.Text(await changes.DiffAsync(await changes.FindAsync(caller, id, cancellationToken), string.IsNullOrEmpty(path) ? null : path, cancellationToken) ?? "",
            "text/x-diff; charset=utf-8");
}
