using Covibe.Server.Http;
using Covibe.Protocol;
using Covibe.Server.Data;
using Microsoft.EntityFrameworkCore;
using Covibe.Server.Features.Events;

namespace Covibe.Server.Features.Previews;

/// <summary>What the team hears about its preview on the hub: <c>preview_status</c> on every change, seed 001's <c>preview_updated</c> when a new version serves.</summary>
public sealed class PreviewEvents(IDbContextFactory<CovibeDb> dbs, ITeamEvents events, PreviewUrls urls)
{
    public async Task ChangedAsync(string teamId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        if (await PreviewService.DtoAsync(db, teamId, urls, cancellationToken) is { } preview)
        {
            events.Publish(teamId, new PreviewStatusMessage(preview));
        }
    }

    public void Updated(string teamId, string url, string commit) => events.Publish(teamId, new PreviewUpdatedMessage(url, commit));
}

/// <summary>A deploy's log: everything its build and its app print, in one file on this machine, read by byte position.</summary>
/// <summary>
/// A page of a deploy's log, with the deploy's <see cref="Status"/>; <see cref="Over"/>: the deploy will write no more (not
/// under way, not live).
/// </summary>
public sealed record DeployLogPage(LogPage Page, string Status, bool Over);

public static class PreviewLogs
{
    public static string? PathOf(PreviewDeploy deploy) => deploy.RuntimeDirectory is { } runtime ? System.IO.Path.Combine(runtime, "output.log") : null;

    public static long Length(PreviewDeploy deploy)
    {
        if (PathOf(deploy) is not { } path)
        {
            return 0;
        }
        var info = new FileInfo(path);
        return info.Exists && info.LinkTarget is null ? info.Length : 0;
    }
}
