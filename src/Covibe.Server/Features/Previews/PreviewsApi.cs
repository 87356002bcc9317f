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
        services.AddSingleton(sp => new GitMirror(Path.Combine(sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<Hosting.ServerOptions>>().Value.DataDirectory, "previews", ".git-home")));
        services.AddSingleton<PreviewUrls>();
        services.AddSingleton<PreviewConnections>();
        services.AddSingleton<PreviewEvents>();
        services.AddSingleton<PreviewService>();
        services.AddSingleton<PreviewAccess>();
        services.AddSingleton<PreviewJobs>();
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
        try
        {
            var (_, secret) = await previews.ConnectAsync(caller, request.RepositoryUrl, request.Branch, cancellationToken);
            var dto = (await previews.GetAsync(caller.TeamId, cancellationToken))!;
            return TypedResults.Ok(new PreviewConnectedResponse(dto.WebhookUrl, secret, dto));
        }
        catch (PreviewRequestException e)
        {
            return Problems.ValidationAsProblem(new() { [e.Field] = [e.Message] });
        }
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
        try
        {
            if (!await previews.RedeployAsync(caller.TeamId, cancellationToken))
            {
                return NotConnected();
            }
        }
        catch (PreviewRequestException e)
        {
            return Problems.Conflict("repository-unreadable", "The repository could not be read", e.Message);
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
    /// A deploy's log from byte <paramref name="from"/> (at most 1 MiB per answer), as it is written: with
    /// <paramref name="wait"/> (seconds, up to 30) an answer with nothing new waits for more while the deploy is under way. Headers say where the
    /// next read starts (<c>Covibe-Log-Next</c>), whether more can come (<c>Covibe-Log-Complete</c>) and the deploy's status (<c>Covibe-Deploy-Status</c>).
    /// </summary>
    public static async Task<IResult> Log(string id, long? from, int? wait, Caller caller, CovibeDb db, TimeProvider time, HttpContext context, CancellationToken cancellationToken)
    {
        var deploy = await db.PreviewDeploys.AsNoTracking().SingleOrDefaultAsync(d => d.Id == id && d.TeamId == caller.TeamId, cancellationToken);
        if (deploy is null)
        {
            return Problems.NotFound("Deploy", $"Your team's preview has no deploy '{id}'. List them with GET /api/preview/deploys.");
        }
        var start = from ?? 0;
        if (start < 0)
        {
            return Problems.ValidationAsProblem(new() { ["from"] = ["A position is 0 or more."] });
        }
        var waitFor = TimeSpan.FromSeconds(Math.Clamp(wait ?? 0, 0, 30));
        var started = time.GetTimestamp();
        var buffer = new byte[1024 * 1024];
        var n = 0;
        while (true)
        {
            if (PreviewLogs.PathOf(deploy) is { } path)
            {
                n = await Execution.UntrustedFiles.ReadAsync(path, start, buffer, cancellationToken);
            }
            var complete = !PreviewStatuses.InProgress(deploy.Status) && deploy.Status != PreviewStatuses.Live;
            // A wait ends with new output, or when the deploy is no longer under way (live, failed...).
            if (n > 0 || !PreviewStatuses.InProgress(deploy.Status) || time.GetElapsedTime(started) >= waitFor)
            {
                context.Response.Headers["Covibe-Log-Position"] = start.ToString(System.Globalization.CultureInfo.InvariantCulture);
                context.Response.Headers["Covibe-Log-Next"] = (start + n).ToString(System.Globalization.CultureInfo.InvariantCulture);
                context.Response.Headers["Covibe-Log-Complete"] = complete && n == 0 ? "true" : "false";
                context.Response.Headers["Covibe-Deploy-Status"] = deploy.Status;
                return TypedResults.Bytes(buffer.AsMemory(0, n).ToArray(), "text/plain; charset=utf-8");
            }
            await Task.Delay(TimeSpan.FromMilliseconds(200), time, cancellationToken);
            deploy = await db.PreviewDeploys.AsNoTracking().SingleAsync(d => d.Id == id, cancellationToken);
        }
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

    /// <summary>
    /// Seed 001's webhook. The delivery is checked against the team's secret (the HMAC GitHub sends in
    /// <c>X-Hub-Signature-256</c>), stored (with the commit it queues) before it is answered, and answered at once:
    /// the build runs after. A redelivery (the same <c>X-GitHub-Delivery</c>) is answered and not queued again.
    /// </summary>
    public static async Task<IResult> Webhook(HttpContext context, string? team, CovibeDb db, PreviewService previews, PreviewEvents events, TimeProvider time,
        ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        var logger = loggers.CreateLogger(typeof(PreviewsApi));
        var body = await ReadBodyAsync(context.Request, cancellationToken);
        if (body is null)
        {
            return Problems.Create(413, "payload-too-large", "Payload too large", $"A delivery may have at most {MaxWebhookBytes / 1024 / 1024} MB.");
        }
        GitHubPush? push = null;
        var parsed = true;
        try
        {
            push = GitHubPush.Parse(body);
        }
        catch (System.Text.Json.JsonException)
        {
            parsed = false;
        }

        // The team: named in the URL we hand out, else the one whose repository the delivery is about.
        var candidates = !string.IsNullOrEmpty(team)
            ? await db.Previews.Where(p => p.TeamId == team).ToListAsync(cancellationToken)
            : push is null ? [] : (await db.Previews.ToListAsync(cancellationToken))
                .Where(p => push.RepositoryUrls.Select(GitHubPush.Normalize).Contains(GitHubPush.Normalize(p.RepositoryUrl))).ToList();
        var signature = context.Request.Headers["X-Hub-Signature-256"].ToString();
        var preview = candidates.FirstOrDefault(p => GitHubPush.SignatureMatches(body, signature, previews.WebhookSecret(p)));
        if (preview is null)
        {
            PreviewsLog.WebhookRefused(logger, team, candidates.Count == 0 ? "no such preview" : "bad signature");
            return Problems.Unauthorized("webhook-signature",
                "The delivery's X-Hub-Signature-256 does not match the webhook secret of a preview here. Paste the secret Covibe showed when the repository was connected (or rotate it) into the webhook's settings, with content type application/json.");
        }

        var eventName = context.Request.Headers["X-GitHub-Event"].ToString();
        var deliveryId = context.Request.Headers["X-GitHub-Delivery"].ToString();
        if (eventName == "ping")
        {
            return TypedResults.Ok(new WebhookResponse("pong", "Covibe's preview receives this repository's pushes."));
        }
        if (eventName != "push")
        {
            return TypedResults.Accepted((string?)null, new WebhookResponse("ignored", $"Covibe's preview only acts on push events, not '{eventName}'."));
        }
        if (!parsed || push is null)
        {
            return Problems.BadRequest("webhook-payload", "Not a push event", "The body is not a GitHub push event (JSON with ref and after). Set the webhook's content type to application/json.");
        }
        if (string.IsNullOrEmpty(deliveryId) || deliveryId.Length > 100)
        {
            return Problems.BadRequest("webhook-delivery", "No delivery id", "A delivery needs its X-GitHub-Delivery header.");
        }
        if (await db.PreviewDeliveries.AnyAsync(d => d.TeamId == preview.TeamId && d.DeliveryId == deliveryId, cancellationToken))
        {
            return TypedResults.Ok(new WebhookResponse("duplicate", "This delivery was received before; it is not deployed twice."));
        }
        var now = time.GetUtcNow().UtcDateTime;
        db.PreviewDeliveries.Add(new PreviewDelivery { TeamId = preview.TeamId, DeliveryId = deliveryId, Event = eventName, Ref = push.Ref, Commit = push.After, ReceivedAt = now });
        string? deployId = null;
        var wanted = push.Branch == preview.Branch && !push.Deleted;
        if (wanted)
        {
            deployId = PreviewService.Queue(db, preview.TeamId, push.After, "push", now).Id;
        }
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException)
        {
            // The same delivery, twice at once: the other one stored it.
            return TypedResults.Ok(new WebhookResponse("duplicate", "This delivery was received before; it is not deployed twice."));
        }
        PreviewsLog.WebhookReceived(logger, deliveryId, preview.TeamId, wanted ? "queued" : "ignored");
        if (!wanted)
        {
            return TypedResults.Accepted((string?)null, new WebhookResponse("ignored",
                push.Deleted ? $"The branch '{push.Branch}' was deleted; the preview keeps its version." : $"The preview follows '{preview.Branch}', not '{push.Ref}'."));
        }
        previews.Wake(preview.TeamId);
        await events.ChangedAsync(preview.TeamId, cancellationToken);
        return TypedResults.Accepted("/api/preview", new WebhookResponse("queued", $"Commit {PreviewDeployer.Short(push.After)} is queued for the preview.", deployId));
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
