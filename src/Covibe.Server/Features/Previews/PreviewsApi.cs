using Covibe.Server.Features.Git;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Auth;
using Covibe.Server.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Previews;

/// <summary>
/// The shared preview over REST (<c>/api/preview</c>) and seed 001's GitHub webhook (<c>POST /api/webhook/push</c>).
/// Members see it and open it; the team owner connects the repository, rotates the webhook secret, redeploys and cancels.
/// </summary>
public static class PreviewsApi
{
    /// <summary>GitHub sends at most 25 MB.</summary>
    private const int MaxWebhookBytes = 25 * 1024 * 1024;

    public static IServiceCollection AddPreviews(this IServiceCollection services)
    {
        services.AddOptions<PreviewsOptions>().BindConfiguration(PreviewsOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<PreviewUrls>();
        services.AddSingleton<PreviewConnections>();
        services.AddSingleton<PreviewEvents>();
        services.AddSingleton<PreviewService>();
        services.AddSingleton<Secrets.ISealedSecrets, PreviewSecrets>();
        services.AddSingleton<PreviewWebhooks>();
        services.AddSingleton<PreviewAccess>();
        services.AddSingleton<PreviewJobs>();
        services.AddSingleton<PreviewMetrics>();
        services.AddSingleton<Hosting.IMetricsSource>(sp => sp.GetRequiredService<PreviewMetrics>());
        services.AddSingleton<PreviewDeployer>();
        services.AddHttpForwarder();
        services.AddSingleton<PreviewProxy>();
        // The preview's own origin listens before deploys start, so every URL they announce is known.
        services.AddHostedService(sp => sp.GetRequiredService<PreviewProxy>());
        services.AddHostedService(sp => sp.GetRequiredService<PreviewDeployer>());
        return services;
    }

    public static IEndpointRouteBuilder MapPreviewsApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/preview").WithTags("Preview").RequireAuthorization();
        api.MapGet("", Get);
        api.MapPut("", Connect);
        api.MapDelete("", Disconnect);
        api.MapPost("/webhook-secret", RotateSecret);
        api.MapPost("/redeploy", Redeploy);
        api.MapPost("/cancel", Cancel);
        api.MapGet("/deploys", Deploys);
        api.MapGet("/deploys/{id}/log", Log);
        api.MapPost("/link", Link);
        app.MapPost("/api/webhook/push", Webhook).WithTags("Preview").AllowAnonymous();
        return app;
    }

    public static async Task<Results<Ok<PreviewDto>, ProblemHttpResult>> Get(Caller caller, PreviewService previews, CancellationToken cancellationToken) =>
        await previews.GetAsync(caller.TeamId, cancellationToken) is { } preview ? TypedResults.Ok(preview) : NotConnected();

    public static async Task<Results<Ok<PreviewConnectedResponse>, ProblemHttpResult>> Connect(
        SetPreviewRequest request, Caller caller, CovibeDb db, PreviewService previews, PreviewUrls urls, CancellationToken cancellationToken)
    {
        if (await OwnerOnlyAsync(db, caller, "connect the team's repository", cancellationToken) is { } refusal)
        {
            return refusal;
        }
        var (_, secret) = await previews.ConnectAsync(caller, request.RepositoryUrl, request.Branch, cancellationToken);
        var dto = (await previews.GetAsync(caller.TeamId, cancellationToken))!;
        return TypedResults.Ok(new PreviewConnectedResponse(dto.WebhookUrl, secret, dto));
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> Disconnect(Caller caller, CovibeDb db, PreviewService previews, CancellationToken cancellationToken)
    {
        if (await OwnerOnlyAsync(db, caller, "disconnect the preview", cancellationToken) is { } refusal)
        {
            return refusal;
        }
        return await previews.DisconnectAsync(caller.TeamId, cancellationToken) ? TypedResults.NoContent() : NotConnected();
    }

    public static async Task<Results<Ok<PreviewConnectedResponse>, ProblemHttpResult>> RotateSecret(
        Caller caller, CovibeDb db, PreviewService previews, CancellationToken cancellationToken)
    {
        if (await OwnerOnlyAsync(db, caller, "rotate the webhook secret", cancellationToken) is { } refusal)
        {
            return refusal;
        }
        if (await previews.RotateAsync(caller, cancellationToken) is not { } rotated)
        {
            return NotConnected();
        }
        var dto = (await previews.GetAsync(caller.TeamId, cancellationToken))!;
        return TypedResults.Ok(new PreviewConnectedResponse(dto.WebhookUrl, rotated.Secret, dto));
    }

    /// <summary>Deploys the branch's head now (even one that is live, or failed before).</summary>
    public static async Task<Results<Accepted<PreviewDto>, ProblemHttpResult>> Redeploy(Caller caller, CovibeDb db, PreviewService previews, CancellationToken cancellationToken)
    {
        if (await OwnerOnlyAsync(db, caller, "redeploy the preview", cancellationToken) is { } refusal)
        {
            return refusal;
        }
        if (!await previews.RedeployAsync(caller.TeamId, cancellationToken))
        {
            return NotConnected();
        }
        return TypedResults.Accepted("/api/preview", (await previews.GetAsync(caller.TeamId, cancellationToken))!);
    }

    public static async Task<Results<Ok<PreviewDto>, ProblemHttpResult>> Cancel(
        Caller caller, CovibeDb db, PreviewService previews, PreviewDeployer deployer, CancellationToken cancellationToken)
    {
        if (await OwnerOnlyAsync(db, caller, "cancel a deploy", cancellationToken) is { } refusal)
        {
            return refusal;
        }
        if (await previews.GetAsync(caller.TeamId, cancellationToken) is null)
        {
            return NotConnected();
        }
        if (!await deployer.CancelAsync(caller.TeamId, cancellationToken))
        {
            return Problems.Conflict("nothing-to-cancel", "Nothing to cancel", "No deploy of the preview is queued or under way.");
        }
        return TypedResults.Ok((await previews.GetAsync(caller.TeamId, cancellationToken))!);
    }

    public static async Task<Ok<PreviewDeployListResponse>> Deploys(Caller caller, PreviewService previews, int? limit, CancellationToken cancellationToken) =>
        TypedResults.Ok(new PreviewDeployListResponse(await previews.DeploysAsync(caller.TeamId, Math.Clamp(limit ?? 20, 1, 100), cancellationToken)));

    /// <summary>
    /// A deploy's log from byte <paramref name="from"/> (at most 1 MiB per answer), as it is written, by the one contract of
    /// <see cref="LogPages"/>: with <paramref name="wait"/> (seconds, up to 30) an answer with nothing new waits for more while
    /// the deploy is under way. Headers as before it too: <c>Covibe-Log-Position</c>, <c>Covibe-Log-Next</c>,
    /// <c>Covibe-Log-Complete</c> (true on an empty answer once the deploy is over), and the deploy's status (<c>Covibe-Deploy-Status</c>).
    /// </summary>
    public static async Task<IResult> Log(string id, long? from, int? wait, Caller caller, PreviewService previews, TimeProvider time, HttpContext context, CancellationToken cancellationToken)
    {
        LogPages.Check(from, wait);
        var log = await LogPages.WaitAsync(ct => previews.ReadLogAsync(caller.TeamId, id, from ?? 0, ct),
            l => l.Page.Data.Length > 0 || !PreviewStatuses.InProgress(l.Status), wait, time, cancellationToken);
        var headers = context.Response.Headers;
        headers["Covibe-Log-Position"] = log.Page.Position.ToString(System.Globalization.CultureInfo.InvariantCulture);
        headers["Covibe-Log-Next"] = log.Page.Next.ToString(System.Globalization.CultureInfo.InvariantCulture);
        headers["Covibe-Log-Complete"] = log.Over && log.Page.Data.Length == 0 ? "true" : "false";
        headers["Covibe-Deploy-Status"] = log.Status;
        return LogPages.Answer(context.Response, log.Page, "text/plain; charset=utf-8");
    }

    public static async Task<Results<Ok<PreviewLinkResponse>, ProblemHttpResult>> Link(
        Caller caller, PreviewService previews, PreviewAccess access, string? path, CancellationToken cancellationToken)
    {
        if (await previews.GetAsync(caller.TeamId, cancellationToken) is null)
        {
            return NotConnected();
        }
        return TypedResults.Ok(await access.LinkAsync(caller, path, cancellationToken));
    }

    /// <summary>Seed 001's webhook (<see cref="PreviewWebhooks"/>): 200 for a ping or a redelivery, 202 for a delivery taken.</summary>
    public static async Task<IResult> Webhook(HttpContext context, string? team, PreviewWebhooks webhooks, CancellationToken cancellationToken)
    {
        var body = await ReadBodyAsync(context.Request, cancellationToken);
        if (body is null)
        {
            return Problems.Create(413, "payload-too-large", "Payload too large", $"A delivery may have at most {MaxWebhookBytes / 1024 / 1024} MB.");
        }
        var headers = context.Request.Headers;
        var outcome = await webhooks.ReceiveAsync(new WebhookDelivery(team, body, headers["X-Hub-Signature-256"].ToString(), headers["X-GitHub-Event"].ToString(),
            headers["X-GitHub-Delivery"].ToString()), cancellationToken);
        return !outcome.Taken ? TypedResults.Ok(outcome.Response)
            : TypedResults.Accepted(outcome.Response.DeployId is null ? null : "/api/preview", outcome.Response);
    }

    private static async Task<byte[]?> ReadBodyAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (request.ContentLength > MaxWebhookBytes)
        {
            return null;
        }
        using var buffer = new MemoryStream();
        var chunk = new byte[64 * 1024];
        int n;
        while ((n = await request.Body.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + n > MaxWebhookBytes)
            {
                return null;
            }
            buffer.Write(chunk, 0, n);
        }
        return buffer.ToArray();
    }

    private static async Task<ProblemHttpResult?> OwnerOnlyAsync(CovibeDb db, Caller caller, string what, CancellationToken cancellationToken)
    {
        var ownerId = await db.Teams.Where(t => t.Id == caller.TeamId).Select(t => t.OwnerId).SingleAsync(cancellationToken);
        return ownerId == caller.UserId ? null : Problems.Forbidden($"Only the team owner can {what}.");
    }

    private static ProblemHttpResult NotConnected() =>
        Problems.NotFound("Preview", "The team has no preview yet. The team owner connects the repository with PUT /api/preview {repositoryUrl, branch} (or `covibe preview set`).");
}
