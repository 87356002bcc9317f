using Covibe.Server.Features.Git;
using Covibe.Server.Hosting;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Previews;

/// <summary>One deploy: built, started, checked, then live (or failed, with why), each step recorded on the deploy.</summary>
public sealed partial class PreviewDeployer
{
    private async Task DeployAsync(Preview preview, PreviewDeploy deploy, CancellationToken cancellationToken)
    {
        var teamDirectory = Path.Combine(Root, preview.TeamId);
        var files = Path.Combine(teamDirectory, deploy.Id);
        var live = false;
        var started = time.GetTimestamp();
        string? outcome = null;
        try
        {
            ServerOptions.EnsureDirectory(Root);
            ServerOptions.EnsureDirectory(teamDirectory);
            var mirror = Path.Combine(teamDirectory, "repo.git");
            var buildTimeout = TimeSpan.FromSeconds(options.Value.BuildTimeoutSeconds);
            await git.FetchAsync(mirror, await service.RemoteAsync(preview, cancellationToken), preview.Branch, buildTimeout, cancellationToken);
            if (!await git.HasCommitAsync(mirror, deploy.Commit, cancellationToken))
            {
                throw new PreviewDeployException($"Commit {Short(deploy.Commit)} is not on the branch '{preview.Branch}' (was it force-pushed away?).");
            }
            await git.ExportAsync(mirror, deploy.Commit, files, cancellationToken);
            var job = await jobs.StartAsync(preview.TeamId, deploy, files, cancellationToken);
            await UpdateAsync(deploy.Id, d =>
            {
                d.ProjectType = job.Plan.Type;
                d.Port = job.Port;
                d.HealthPath = job.Plan.HealthPath;
                d.Backend = job.Process.Backend;
                d.Target = job.Process.Target;
                d.RuntimeDirectory = job.Process.RuntimeDirectory;
                d.Pid = job.Process.Pid;
                d.PidStartTime = job.Process.StartTime;
            }, cancellationToken);
            await events.ChangedAsync(preview.TeamId, cancellationToken);

            await jobs.WaitHealthyAsync(deploy, job, async () =>
            {
                await UpdateAsync(deploy.Id, d => d.Status = PreviewStatuses.Starting, cancellationToken);
                PreviewsLog.DeployStatus(logger, deploy.Id, deploy.TeamId, PreviewStatuses.Starting, deploy.Commit);
                await events.ChangedAsync(deploy.TeamId, cancellationToken);
            }, cancellationToken);
            live = await GoLiveAsync(preview.TeamId, deploy.Id, cancellationToken);
            if (!live)
            {
                throw new PreviewDeployException("The preview was disconnected while this version was starting.");
            }
            outcome = PreviewStatuses.Live;
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            return; // the next start redoes it
        }
        catch (OperationCanceledException)
        {
            outcome = PreviewStatuses.Cancelled;
            await FailAsync(deploy.Id, PreviewStatuses.Cancelled, "Cancelled by the team's owner.");
        }
        catch (Exception e) when (e is GitMirrorException or ProjectFileException or PreviewDeployException)
        {
            outcome = PreviewStatuses.Failed;
            await FailAsync(deploy.Id, PreviewStatuses.Failed, e.Message);
        }
        catch (Exception e)
        {
            outcome = PreviewStatuses.Failed;
            PreviewsLog.WorkerFailed(logger, preview.TeamId, e);
            await FailAsync(deploy.Id, PreviewStatuses.Failed, "The deploy failed on the server (see its log); try a redeploy.");
        }
        finally
        {
            if (outcome is not null)
            {
                metrics.Deployed(outcome, time.GetElapsedTime(started));
            }
            if (!live && !_stopping.IsCancellationRequested)
            {
                PreviewJobs.DeleteFiles(files);
            }
        }
    }

    /// <summary>Switches the team's traffic to the deploy; the version it replaces drains and stops. False when the preview is gone.</summary>
    private async Task<bool> GoLiveAsync(string teamId, string deployId, CancellationToken cancellationToken)
    {
        PreviewDeploy? old;
        PreviewDeploy deploy;
        await using (var db = await dbs.CreateDbContextAsync(cancellationToken))
        {
            var preview = await db.Previews.SingleOrDefaultAsync(p => p.TeamId == teamId, cancellationToken);
            if (preview is null)
            {
                return false;
            }
            deploy = await db.PreviewDeploys.SingleAsync(d => d.Id == deployId, cancellationToken);
            old = preview.LiveDeployId is { } oldId ? await db.PreviewDeploys.SingleOrDefaultAsync(d => d.Id == oldId, cancellationToken) : null;
            var now = time.GetUtcNow().UtcDateTime;
            deploy.Status = PreviewStatuses.Live;
            deploy.FinishedAt = now;
            preview.LiveDeployId = deploy.Id;
            if (old is not null && old.Id != deploy.Id)
            {
                old.Status = PreviewStatuses.Replaced;
            }
            await db.SaveChangesAsync(cancellationToken);
        }
        PreviewsLog.DeployStatus(logger, deploy.Id, teamId, PreviewStatuses.Live, deploy.Commit);
        signals.Send(SwitchedSignal, teamId); // every node's proxy serves the new version from now on
        events.Updated(teamId, urls.Origin(teamId) + "/", deploy.Commit);
        await events.ChangedAsync(teamId, cancellationToken);
        if (old is not null && old.Id != deploy.Id)
        {
            _ = RetireAsync(old);
        }
        return true;
    }

    private async Task FailAsync(string deployId, string status, string error)
    {
        PreviewDeploy? deploy = null;
        await UpdateAsync(deployId, d =>
        {
            Finish(d, status, error, time.GetUtcNow().UtcDateTime);
            deploy = d;
        }, CancellationToken.None);
        if (deploy is null)
        {
            return;
        }
        PreviewsLog.DeployFailed(logger, deploy.Id, deploy.TeamId, error);
        await jobs.StopAsync(deploy, TimeSpan.Zero, CancellationToken.None);
        await jobs.RemoveImageAsync(deploy);
        await events.ChangedAsync(deploy.TeamId, CancellationToken.None);
    }

    private async Task UpdateAsync(string deployId, Action<PreviewDeploy> change, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        if (await db.PreviewDeploys.SingleOrDefaultAsync(d => d.Id == deployId, cancellationToken) is { } deploy)
        {
            change(deploy);
            await db.SaveChangesAsync(cancellationToken);
        }
    }

    private static void Finish(PreviewDeploy deploy, string status, string? error, DateTime now)
    {
        deploy.Status = status;
        deploy.Error = error;
        deploy.FinishedAt = now;
    }
}
