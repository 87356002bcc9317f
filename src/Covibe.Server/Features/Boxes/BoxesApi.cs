using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Auth;
using Covibe.Server.Http;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Covibe.Server.Features.Boxes;

/// <summary>
/// Seed 002 over REST: <c>POST /api/boxes</c> (<c>requestBox</c>), the box store's reads and release, the team's pools
/// (<c>reconcilePools</c>' input) with their figures. docs/api.md has the contract.
/// </summary>
public static class BoxesApi
{
    public static IServiceCollection AddBoxes(this IServiceCollection services)
    {
        services.AddOptions<BoxesOptions>().BindConfiguration(BoxesOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<BoxWork>();
        services.AddSingleton<BoxContainers>();
        services.AddSingleton<BoxProgress>();
        // The kinds of box, one implementation each.
        services.AddSingleton<ContainerBoxes>();
        services.AddSingleton<VmBoxes>();
        services.AddSingleton<IBoxKind>(sp => sp.GetRequiredService<ContainerBoxes>());
        services.AddSingleton<IBoxKind>(sp => sp.GetRequiredService<VmBoxes>());
        services.AddSingleton<BoxKinds>();
        services.AddSingleton<DevcontainerCli>();
        services.AddSingleton<BoxMetrics>();
        services.AddSingleton<Hosting.IMetricsSource>(sp => sp.GetRequiredService<BoxMetrics>());
        services.AddSingleton<BoxService>();
        services.AddSingleton<Secrets.ISealedSecrets, BoxEnvSecrets>();
        services.AddSingleton<PoolService>();
        services.AddSingleton<BoxBuilder>();
        services.AddSingleton<BoxProvisioner>();
        services.AddSingleton<PoolReconciler>();
        services.AddHostedService(sp => sp.GetRequiredService<BoxProvisioner>());
        services.AddHostedService<BoxRestorer>();
        services.AddHostedService(sp => sp.GetRequiredService<PoolReconciler>());
        return services;
    }

    public static IEndpointRouteBuilder MapBoxesApi(this IEndpointRouteBuilder app)
    {
        var boxes = app.MapGroup("/api/boxes").WithTags("Boxes").RequireAuthorization();
        boxes.MapPost("", Request);
        boxes.MapGet("", List);
        boxes.MapGet("/{id}", Get);
        boxes.MapDelete("/{id}", Release);
        boxes.MapGet("/{id}/log", Log);
        boxes.MapPost("/env-payload", EnvPayload);
        var pools = app.MapGroup("/api/pools").WithTags("Boxes").RequireAuthorization();
        pools.MapGet("", Pools);
        pools.MapPut("", SetPools);
        return app;
    }

    /// <summary>A box for the repository and branch: <c>200</c> and <c>ready</c> when claimed from a warm pool, else <c>202</c> and <c>provisioning</c> (follow it with GET).</summary>
    public static async Task<IResult> Request(BoxRequest request, Caller caller, BoxService boxes, CancellationToken cancellationToken)
    {
        var (box, claimed) = await boxes.RequestAsync(caller, request, cancellationToken);
        return claimed ? TypedResults.Ok(box) : TypedResults.Accepted($"/api/boxes/{box.Id}", box);
    }

    public static async Task<Ok<BoxListResponse>> List(Caller caller, BoxService boxes, bool? all, CancellationToken cancellationToken) =>
        TypedResults.Ok(new BoxListResponse(await boxes.ListAsync(caller, all ?? false, cancellationToken)));

    public static async Task<Results<Ok<BoxDto>, ProblemHttpResult>> Get(string id, Caller caller, BoxService boxes, CancellationToken cancellationToken) =>
        await boxes.GetAsync(caller, id, cancellationToken) is { } box ? TypedResults.Ok(box) : NotFound(id);

    public static async Task<IResult> Release(string id, Caller caller, BoxService boxes, CancellationToken cancellationToken) =>
        await boxes.ReleaseAsync(caller, id, cancellationToken) is { } box ? TypedResults.Ok(box) : NotFound(id);

    /// <summary>The box's provisioning log from byte <paramref name="from"/>; <c>complete</c> once it is no longer provisioning and all is read.</summary>
    /// <summary>
    /// The box's provisioning log by the one contract of <see cref="LogPages"/> (<c>from</c>, <c>wait</c>; bytes and the
    /// <c>Covibe-Position</c>/<c>-Next</c>/<c>-Complete</c> headers) when the client accepts text; otherwise as before, as
    /// JSON (<c>{text, next, complete}</c>).
    /// </summary>
    public static async Task<IResult> Log(string id, long? from, int? wait, Caller caller, BoxService boxes, TimeProvider time, HttpContext http, CancellationToken cancellationToken)
    {
        LogPages.Check(from, wait);
        var log = await LogPages.WaitAsync(ct => boxes.LogAsync(caller, id, from ?? 0, ct), l => l is null || l.Data.Length > 0 || l.Complete, wait, time, cancellationToken);
        if (log is null)
        {
            return NotFound(id);
        }
        var accept = http.Request.GetTypedHeaders().Accept;
        var asText = accept.Any(a => a.MediaType.Value is "text/plain" or "application/octet-stream") && !accept.Any(a => a.MediaType.Value is "application/json");
        return asText ? LogPages.Answer(http.Response, log, "text/plain; charset=utf-8")
            : TypedResults.Ok(new BoxLogResponse(System.Text.Encoding.UTF8.GetString(log.Data), log.Next, log.Complete));
    }

    /// <summary>Encrypts a <c>.env</c> for the team (seed 002's <c>envPayload</c>): send it with requests instead of the plaintext.</summary>
    public static Ok<BoxEnvPayloadResponse> EnvPayload(BoxEnvPayloadRequest request, Caller caller, BoxService boxes) =>
        TypedResults.Ok(new BoxEnvPayloadResponse(boxes.SealPayload(caller, request.Env)));

    public static async Task<Ok<PoolListResponse>> Pools(Caller caller, PoolService pools, CancellationToken cancellationToken) =>
        TypedResults.Ok(new PoolListResponse(await pools.ListAsync(caller.TeamId, cancellationToken)));

    /// <summary>Seed 002's <c>reconcilePools</c> input for the team: its whole list of pools (the team owner only).</summary>
    public static async Task<IResult> SetPools(PoolSpec[] request, Caller caller, CovibeDb db, PoolService pools, CancellationToken cancellationToken)
    {
        if (!await caller.IsTeamOwnerAsync(db, cancellationToken))
        {
            return Problems.Forbidden("Only the team owner can set the team's pools.");
        }
        return TypedResults.Ok(new PoolListResponse(await pools.SetAsync(caller, request, cancellationToken)));
    }

    private static ProblemHttpResult NotFound(string id) =>
        Problems.NotFound("Box", $"Your team has no box '{id}'. List them with GET /api/boxes.");
}
