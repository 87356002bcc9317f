using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Http;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Previews;

/// <summary>A webhook delivery as it came: the team named in its URL (if any), its body and GitHub's headers.</summary>
public sealed record WebhookDelivery(string? Team, byte[] Body, string Signature, string Event, string DeliveryId);

/// <summary>What was done with a delivery; <see cref="Taken"/>: it was taken for later (queued, or ignored by choice).</summary>
public sealed record WebhookOutcome(WebhookResponse Response, bool Taken);

/// <summary>
/// Seed 001's webhook. The delivery is checked against the team's secret (the HMAC GitHub sends in
/// <c>X-Hub-Signature-256</c>), stored (with the commit it queues) before it is answered, and answered at once: the
/// build runs after. A redelivery (the same <c>X-GitHub-Delivery</c>) is answered and not queued again. Refusals are
/// <see cref="RequestRefusedException"/>s.
/// </summary>
public sealed class PreviewWebhooks(IDbContextFactory<CovibeDb> dbs, PreviewService previews, PreviewEvents events, TimeProvider time, ILogger<PreviewWebhooks> logger)
{
    private static readonly WebhookOutcome Duplicate = new(new WebhookResponse("duplicate", "This delivery was received before; it is not deployed twice."), Taken: false);

    public async Task<WebhookOutcome> ReceiveAsync(WebhookDelivery delivery, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        GitHubPush? push = null;
        var parsed = true;
        try
        {
            push = GitHubPush.Parse(delivery.Body);
        }
        catch (System.Text.Json.JsonException)
        {
            parsed = false;
        }

        // The team: named in the URL we hand out, else the one whose repository the delivery is about.
        var candidates = !string.IsNullOrEmpty(delivery.Team)
            ? await db.Previews.Where(p => p.TeamId == delivery.Team).ToListAsync(cancellationToken)
            : push is null ? [] : (await db.Previews.ToListAsync(cancellationToken))
                .Where(p => push.RepositoryUrls.Select(GitHubPush.Normalize).Contains(GitHubPush.Normalize(p.RepositoryUrl))).ToList();
        var preview = candidates.FirstOrDefault(p => GitHubPush.SignatureMatches(delivery.Body, delivery.Signature, previews.WebhookSecret(p)));
        if (preview is null)
        {
            PreviewsLog.WebhookRefused(logger, delivery.Team, candidates.Count == 0 ? "no such preview" : "bad signature");
            throw new RequestRefusedException(Refusal.Unauthenticated, "webhook-signature", "Not signed in",
                "The delivery's X-Hub-Signature-256 does not match the webhook secret of a preview here. Paste the secret Covibe showed when the repository was connected (or rotate it) into the webhook's settings, with content type application/json.");
        }

        var (eventName, deliveryId) = (delivery.Event, delivery.DeliveryId);
        if (eventName == "ping")
        {
            return new WebhookOutcome(new WebhookResponse("pong", "Covibe's preview receives this repository's pushes."), Taken: false);
        }
        if (eventName != "push")
        {
            return new WebhookOutcome(new WebhookResponse("ignored", $"Covibe's preview only acts on push events, not '{eventName}'."), Taken: true);
        }
        if (!parsed || push is null)
        {
            throw new RequestRefusedException(Refusal.Invalid, "webhook-payload", "Not a push event", "The body is not a GitHub push event (JSON with ref and after). Set the webhook's content type to application/json.");
        }
        if (string.IsNullOrEmpty(deliveryId) || deliveryId.Length > 100)
        {
            throw new RequestRefusedException(Refusal.Invalid, "webhook-delivery", "No delivery id", "A delivery needs its X-GitHub-Delivery header.");
        }
        if (await db.PreviewDeliveries.AnyAsync(d => d.TeamId == preview.TeamId && d.DeliveryId == deliveryId, cancellationToken))
        {
            return Duplicate;
        }
        var now = time.GetUtcNow().UtcDateTime;
        db.PreviewDeliveries.Add(new PreviewDelivery { TeamId = preview.TeamId, DeliveryId = deliveryId, Event = eventName, Ref = push.Ref, Commit = push.After, ReceivedAt = now });
        string? deployId = null;
        var wanted = push.Branch == preview.Branch && !push.Deleted;
        // A merge Covibe pushed itself was queued then: its webhook changes nothing.
        var already = wanted && await PreviewService.DeployingOrLiveAsync(db, preview.TeamId, push.After, cancellationToken);
        wanted &= !already;
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
            return Duplicate;
        }
        PreviewsLog.WebhookReceived(logger, deliveryId, preview.TeamId, wanted ? "queued" : "ignored");
        if (!wanted)
        {
            return new WebhookOutcome(new WebhookResponse("ignored",
                already ? $"Commit {PreviewDeployer.Short(push.After)} is deployed or queued already."
                : push.Deleted ? $"The branch '{push.Branch}' was deleted; the preview keeps its version." : $"The preview follows '{preview.Branch}', not '{push.Ref}'."), Taken: true);
        }
        previews.Wake(preview.TeamId);
        await events.ChangedAsync(preview.TeamId, cancellationToken);
        return new WebhookOutcome(new WebhookResponse("queued", $"Commit {PreviewDeployer.Short(push.After)} is queued for the preview.", deployId), Taken: true);
    }
}
