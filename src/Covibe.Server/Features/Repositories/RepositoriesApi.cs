using Covibe.Protocol;
using Covibe.Server.Features.Auth;
using Covibe.Server.Http;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Covibe.Server.Features.Repositories;

/// <summary>
/// <c>/api/team/repository</c>: the team's repository. Every member reads it (never its credential); the owner makes the
/// deploy key, connects and disconnects it.
/// </summary>
public static class RepositoriesApi
{
    public static IServiceCollection AddRepositories(this IServiceCollection services)
    {
        services.AddOptions<RepositoriesOptions>().BindConfiguration(RepositoriesOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<RepositoryAccess>();
        services.AddSingleton<RepositoryService>();
        services.AddSingleton<Secrets.ISealedSecrets, RepositorySecrets>();
        services.AddSingleton<TeamMirrors>();
        services.AddSingleton<AgentBranches>();
        return services;
    }

    public static IEndpointRouteBuilder MapRepositoriesApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/team/repository").WithTags("Team").RequireAuthorization();
        api.MapGet("", Get);
        api.MapPut("", Connect);
        api.MapDelete("", Disconnect);
        api.MapPost("/deploy-key", MakeDeployKey);
        return app;
    }

    public static async Task<Results<Ok<TeamRepositoryResponse>, ProblemHttpResult>> Get(Caller caller, RepositoryService repositories, CancellationToken cancellationToken) =>
        await repositories.GetAsync(caller.TeamId, cancellationToken) is { } repository ? TypedResults.Ok(repository) : NotConnected();

    public static async Task<Ok<TeamRepositoryResponse>> Connect(ConnectRepositoryRequest request, Caller caller, RepositoryService repositories, CancellationToken cancellationToken) =>
        TypedResults.Ok(await repositories.ConnectAsync(caller, request, cancellationToken));

    public static async Task<Results<NoContent, ProblemHttpResult>> Disconnect(Caller caller, RepositoryService repositories, CancellationToken cancellationToken) =>
        await repositories.DisconnectAsync(caller, cancellationToken) ? TypedResults.NoContent() : NotConnected();

    public static async Task<Ok<DeployKeyResponse>> MakeDeployKey(Caller caller, RepositoryService repositories, CancellationToken cancellationToken) =>
        TypedResults.Ok(await repositories.MakeDeployKeyAsync(caller, cancellationToken));

    private static ProblemHttpResult NotConnected() =>
        Problems.NotFound("Repository", "The team has no repository yet. Its owner connects one: covibe repo connect URL (see docs/api.md).");
}
