using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Covibe.Execution;
using Covibe.Server.Data;
using Covibe.Server.Features.Machines;
using Covibe.Server.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Previews;

/// <summary>A deploy that cannot go live; the message is shown to the team with the deploy.</summary>
public sealed class PreviewDeployException(string message) : Exception(message);

/// <summary>
/// Builds and serves each team's preview. One worker per team takes the newest queued commit (older queued ones
/// are skipped), fetches it into the team's mirror, exports its files, detects how to run it, and runs build and
/// app as one job on the placement <see cref="MachineResolver"/> gives (sandboxed on this machine), serving on a
/// port of seed 003's range. The new version goes live only after it answers its health check; the old one keeps
/// serving until then, drains, and stops. A version that fails leaves the live one alone. Jobs outlive the server
/// like agents do: a restart keeps the live version and redoes a deploy it interrupted.
/// </summary>
public sealed class PreviewDeployer(
    IDbContextFactory<CovibeDb> dbs, PreviewService service, PreviewGit git, PreviewEvents events, PreviewUrls urls,
    MachineResolver machines, ExecutionBackends backends, IOptions<PreviewsOptions> options, IOptions<ServerOptions> server,
    IOptions<IsolationOptions> isolation, PreviewProxy proxy, PreviewConnections connections, ContainerEngine engine, Workspaces workspaces,
    IServiceProvider services, TimeProvider time, ILogger<PreviewDeployer> logger) : BackgroundService
{
    private const string Script = """
        if [ -n "$COVIBE_NOTE" ]; then printf '[covibe] %s\n' "$COVIBE_NOTE"; fi
        if [ -n "$COVIBE_BUILD" ]; then
          printf '[covibe] $ %s\n' "$COVIBE_BUILD"
          sh -c "$COVIBE_BUILD" || { code=$?; printf '[covibe] The build failed (exit code %s).\n' "$code"; exit "$code"; }
        fi
        printf '%s\n' "$COVIBE_STARTING"
        if [ -n "$COVIBE_SOCKET" ]; then node -e "$COVIBE_BRIDGE" & fi
        exec sh -c "$COVIBE_START"
        """;

    private readonly ConcurrentDictionary<string, TeamWorker> _workers = new();
    private readonly HttpClient _health = new(connections.Handler()) { Timeout = TimeSpan.FromSeconds(5) };
    private CancellationToken _stopping;

    private string Root => Path.Combine(server.Value.DataDirectory, "previews");

    /// <summary>Wakes the team's worker (a commit was queued, or the preview was removed).</summary>
    public void Wake(string teamId)
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }
        var worker = _workers.GetOrAdd(teamId, _ => new TeamWorker());
        lock (worker)
        {
            worker.Loop ??= Task.Run(() => RunTeamAsync(teamId, worker), CancellationToken.None);
        }
        worker.Signal.Release();
    }

    /// <summary>Stops the deploy in progress (its build really stops) and drops the queued ones; false when nothing was under way.</summary>
    public async Task<bool> CancelAsync(string teamId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var queued = await db.PreviewDeploys.Where(d => d.TeamId == teamId && d.Status == PreviewStatuses.Queued).ToListAsync(cancellationToken);
        var now = time.GetUtcNow().UtcDateTime;
        foreach (var deploy in queued)
        {
            Finish(deploy, PreviewStatuses.Cancelled, "Cancelled by the team's owner.", now);
        }
        await db.SaveChangesAsync(cancellationToken);
        var running = _workers.TryGetValue(teamId, out var worker) && worker.Current is { IsCancellationRequested: false } current;
        if (running)
        {
            await worker!.Current!.CancelAsync();
        }
        if (queued.Count > 0 || running)
        {
            await events.ChangedAsync(teamId, cancellationToken);
        }
        return queued.Count > 0 || running;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _stopping = stoppingToken;
        service.Queued += Wake;
        try
        {
            await RecoverAsync(stoppingToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            PreviewsLog.WorkerFailed(logger, "*", e);
        }
        var nextCheck = time.GetUtcNow();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await WatchLiveAsync(stoppingToken);
                if (options.Value.CheckSeconds > 0 && time.GetUtcNow() >= nextCheck)
                {
                    nextCheck = time.GetUtcNow().AddSeconds(options.Value.CheckSeconds);
                    await CheckBranchesAsync(stoppingToken);
                }
                await Task.Delay(TimeSpan.FromSeconds(Math.Clamp(options.Value.CheckSeconds, 1, 5)), time, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                PreviewsLog.WorkerFailed(logger, "*", e);
                await Task.Delay(TimeSpan.FromSeconds(5), time, stoppingToken);
            }
        }
    }

    /// <summary>After a restart: deploys that were under way are done again (their jobs stopped); every team's worker starts.</summary>
    private async Task RecoverAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var interrupted = await db.PreviewDeploys.Where(d => d.Status == PreviewStatuses.Building || d.Status == PreviewStatuses.Starting).ToListAsync(cancellationToken);
        var now = time.GetUtcNow().UtcDateTime;
        foreach (var deploy in interrupted)
        {
            await StopAsync(deploy, TimeSpan.Zero, cancellationToken);
            Finish(deploy, PreviewStatuses.Cancelled, "Interrupted by a server restart; deployed again.", now);
            var newer = await db.PreviewDeploys.AnyAsync(d => d.TeamId == deploy.TeamId && d.Status == PreviewStatuses.Queued && d.CreatedAt > deploy.CreatedAt, cancellationToken);
            if (!newer)
            {
                PreviewService.Queue(db, deploy.TeamId, deploy.Commit, deploy.Trigger, now);
            }
        }
        await db.SaveChangesAsync(cancellationToken);
        foreach (var live in await db.PreviewDeploys.Where(d => d.Status == PreviewStatuses.Live && d.Port != null && d.RuntimeDirectory != null).ToListAsync(cancellationToken))
        {
            if (File.Exists(PreviewConnections.SocketOf(live.RuntimeDirectory!)))
            {
                connections.Register(live.Port!.Value, PreviewConnections.SocketOf(live.RuntimeDirectory!));
            }
        }
        foreach (var teamId in await db.Previews.Select(p => p.TeamId).ToListAsync(cancellationToken))
        {
            Wake(teamId);
        }
    }

    private async Task RunTeamAsync(string teamId, TeamWorker worker)
    {
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                await worker.Signal.WaitAsync(_stopping);
                while (await NextAsync(teamId, _stopping) is { } next)
                {
                    using var current = CancellationTokenSource.CreateLinkedTokenSource(_stopping);
                    worker.Current = current;
                    try
                    {
                        await DeployAsync(next.Preview, next.Deploy, current.Token);
                    }
                    finally
                    {
                        worker.Current = null;
                    }
                }
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                PreviewsLog.WorkerFailed(logger, teamId, e);
                await Task.Delay(TimeSpan.FromSeconds(1), time, CancellationToken.None);
            }
        }
    }

    /// <summary>The newest queued deploy, now building; older queued ones are skipped. Null when there is none, or the preview is gone (then nothing of it keeps running).</summary>
    private async Task<(Preview Preview, PreviewDeploy Deploy)?> NextAsync(string teamId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var preview = await db.Previews.AsNoTracking().SingleOrDefaultAsync(p => p.TeamId == teamId, cancellationToken);
        var queued = await db.PreviewDeploys.Where(d => d.TeamId == teamId && d.Status == PreviewStatuses.Queued)
            .OrderByDescending(d => d.CreatedAt).ThenByDescending(d => d.Id).ToListAsync(cancellationToken);
        var now = time.GetUtcNow().UtcDateTime;
        if (preview is null)
        {
            foreach (var deploy in await db.PreviewDeploys.Where(d => d.TeamId == teamId && d.Status == PreviewStatuses.Live).ToListAsync(cancellationToken))
            {
                await StopAsync(deploy, TimeSpan.Zero, cancellationToken);
                Finish(deploy, PreviewStatuses.Replaced, "The preview was disconnected.", now);
            }
            foreach (var deploy in queued)
            {
                Finish(deploy, PreviewStatuses.Cancelled, "The preview was disconnected.", now);
            }
            await db.SaveChangesAsync(cancellationToken);
            return null;
        }
        if (queued.Count == 0)
        {
            return null;
        }
        var next = queued[0];
        foreach (var older in queued.Skip(1))
        {
            Finish(older, PreviewStatuses.Skipped, $"A newer commit ({Short(next.Commit)}) came first.", now);
        }
        next.Status = PreviewStatuses.Building;
        next.StartedAt = now;
        await db.SaveChangesAsync(cancellationToken);
        PreviewsLog.DeployStatus(logger, next.Id, teamId, next.Status, next.Commit);
        await events.ChangedAsync(teamId, cancellationToken);
        return (preview, next);
    }

    private async Task DeployAsync(Preview preview, PreviewDeploy deploy, CancellationToken cancellationToken)
    {
        var teamDirectory = Path.Combine(Root, preview.TeamId);
        var files = Path.Combine(teamDirectory, deploy.Id);
        var live = false;
        try
        {
            ServerOptions.EnsureDirectory(Root);
            ServerOptions.EnsureDirectory(teamDirectory);
            var mirror = Path.Combine(teamDirectory, "repo.git");
            var buildTimeout = TimeSpan.FromSeconds(options.Value.BuildTimeoutSeconds);
            await git.FetchAsync(mirror, preview.RepositoryUrl, preview.Branch, options.Value.AllowLocalRepositories, buildTimeout, cancellationToken);
            if (!await git.HasCommitAsync(mirror, deploy.Commit, cancellationToken))
            {
                throw new PreviewDeployException($"Commit {Short(deploy.Commit)} is not on the branch '{preview.Branch}' (was it force-pushed away?).");
            }
            await git.ExportAsync(mirror, deploy.Commit, files, cancellationToken);
            var placement = await machines.PlacePreviewAsync(preview.TeamId, files, cancellationToken);
            var inContainer = placement.Backend == ContainerBackend.BackendName;
            var plan = ProjectDetection.Detect(new DirectoryFiles(files), containers: inContainer);
            if (UntrustedFiles.RunningAsRoot && placement.Backend != LocalBackend.BackendName)
            {
                await GiveToSandboxAsync(files, cancellationToken); // sandboxed programs and containers run as the sandbox's user
            }
            var port = await FreePortAsync(cancellationToken);
            var appPort = plan.Port ?? port;
            var backend = backends.Get(placement.Backend);
            var inside = placement.Backend == LocalBackend.BackendName ? files : HostSandbox.Workspace;
            var environment = new Dictionary<string, string>(placement.Environment)
            {
                ["PATH"] = "/usr/local/bin:/usr/bin:/bin",
                ["HOME"] = inside,
                ["HOST"] = inContainer ? "0.0.0.0" : "127.0.0.1",
                ["CI"] = "true",
                ["COVIBE_NOTE"] = placement.Fallback ?? "",
                ["COVIBE_BUILD"] = plan.Build ?? "",
                ["COVIBE_START"] = plan.Start ?? "exec node -e \"$COVIBE_STATIC_SERVER\" \"$COVIBE_STATIC_ROOT\"",
            };
            PreviewLaunch? launch = inContainer ? new PreviewLaunch(port, ContainerPort: appPort) : null;
            if (plan.ContainerFile is { } containerFile)
            {
                var image = await BuildImageAsync(preview.TeamId, deploy, files, containerFile, cancellationToken);
                environment["HOME"] = "/tmp";
                environment["COVIBE_START"] = image.Start;
                appPort = plan.Port ?? image.Port ?? port;
                launch = new PreviewLaunch(port, image.Tag, image.WorkingDirectory, appPort);
            }
            else if (!inContainer && plan.Port is { } fixedPort)
            {
                port = fixedPort; // on this machine an app that insists on its port is reached there
            }
            environment["PORT"] = appPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
            environment["COVIBE_STARTING"] = StartingLine(deploy, plan);
            // A sandbox with a network of its own: the app is reached through a bridge on a Unix socket.
            var bridged = placement.Backend == LocalBackend.SandboxedName && services.GetRequiredService<HostSandbox>().IsolatesNetwork;
            if (bridged)
            {
                environment["COVIBE_SOCKET"] = PreviewConnections.SocketInside;
                environment["COVIBE_BRIDGE"] = PreviewConnections.Bridge;
            }
            if (plan.Start is null && plan.ContainerFile is null)
            {
                environment["COVIBE_STATIC_SERVER"] = StaticServer.Script;
                environment["COVIBE_STATIC_ROOT"] = Path.Combine(inside, plan.StaticRoot ?? ".");
            }
            var process = await backend.StartAsync(
                new AgentLaunch(RuntimeName(deploy), ["sh", "-c", Script, "covibe-preview"], "", environment, Workspace: files, TeamId: preview.TeamId, Preview: launch),
                cancellationToken);
            if (bridged)
            {
                connections.Register(port, PreviewConnections.SocketOf(process.RuntimeDirectory));
            }
            await UpdateAsync(deploy.Id, d =>
            {
                d.ProjectType = plan.Type;
                d.Port = port;
                d.Backend = process.Backend;
                d.Target = process.Target;
                d.RuntimeDirectory = process.RuntimeDirectory;
                d.Pid = process.Pid;
                d.PidStartTime = process.StartTime;
            }, cancellationToken);
            await events.ChangedAsync(preview.TeamId, cancellationToken);

            await WaitHealthyAsync(deploy, backend, process, port, plan.HealthPath, cancellationToken);
            live = await GoLiveAsync(preview.TeamId, deploy.Id, cancellationToken);
            if (!live)
            {
                throw new PreviewDeployException("The preview was disconnected while this version was starting.");
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            return; // the next start redoes it
        }
        catch (OperationCanceledException)
        {
            await FailAsync(deploy.Id, PreviewStatuses.Cancelled, "Cancelled by the team's owner.");
        }
        catch (Exception e) when (e is PreviewGitException or ProjectFileException or PreviewDeployException)
        {
            await FailAsync(deploy.Id, PreviewStatuses.Failed, e.Message);
        }
        catch (Exception e)
        {
            PreviewsLog.WorkerFailed(logger, preview.TeamId, e);
            await FailAsync(deploy.Id, PreviewStatuses.Failed, "The deploy failed on the server (see its log); try a redeploy.");
        }
        finally
        {
            if (!live && !_stopping.IsCancellationRequested)
            {
                DeleteFiles(files);
            }
        }
    }

    private static string RuntimeName(PreviewDeploy deploy) => "preview-" + deploy.Id;

    private static string ImageTag(string teamId, string deployId) => $"covibe-preview-{teamId}:{deployId}";

    /// <summary>
    /// Builds the repository's own image (its Dockerfile or Containerfile) in the engine, its output going to the
    /// deploy's log; answers its tag, how to start it (its entrypoint and command, run by the wrapper), where, and
    /// the port it exposes.
    /// </summary>
    private async Task<(string Tag, string Start, string? WorkingDirectory, int? Port)> BuildImageAsync(
        string teamId, PreviewDeploy deploy, string files, string containerFile, CancellationToken cancellationToken)
    {
        var runtime = Path.Combine(workspaces.RuntimeRoot, RuntimeName(deploy));
        Directory.CreateDirectory(runtime, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        await UpdateAsync(deploy.Id, d => d.RuntimeDirectory = runtime, cancellationToken); // its log can be read while it builds
        var tag = ImageTag(teamId, deploy.Id);
        await using var log = new FileStream(Path.Combine(runtime, "output.log"), FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
        async Task WriteAsync(string text)
        {
            await log.WriteAsync(System.Text.Encoding.UTF8.GetBytes(text), cancellationToken);
            await log.FlushAsync(cancellationToken);
        }
        await WriteAsync($"[covibe] Building the image from {containerFile}\n");
        var context = Path.Combine(Path.GetTempPath(), $"covibe-context-{deploy.Id}.tar");
        try
        {
            await System.Formats.Tar.TarFile.CreateFromDirectoryAsync(files, context, includeBaseDirectory: false, cancellationToken);
            string? error = null;
            await using (var tar = File.OpenRead(context))
            {
                var progress = new Progress<Docker.DotNet.Models.JSONMessage>();
                var pending = new List<string>();
                progress.ProgressChanged += (_, m) =>
                {
                    lock (pending)
                    {
                        pending.Add(m.Stream ?? (m.Status is { } status ? status + "\n" : ""));
                        error ??= m.Error?.Message;
                    }
                };
                try
                {
                    await engine.Client.Images.BuildImageFromDockerfileAsync(
                        new Docker.DotNet.Models.ImageBuildParameters { Dockerfile = containerFile, Tags = [tag], Remove = true, ForceRemove = true },
                        tar, null, null, progress, cancellationToken);
                }
                catch (Docker.DotNet.DockerApiException e)
                {
                    error ??= ManagedContainers.EngineMessage(e);
                }
                string[] lines;
                lock (pending)
                {
                    lines = [.. pending];
                }
                await WriteAsync(string.Concat(lines));
            }
            Docker.DotNet.Models.ImageInspectResponse image;
            try
            {
                image = await engine.Client.Images.InspectImageAsync(tag, cancellationToken);
            }
            catch (Docker.DotNet.DockerApiException)
            {
                await WriteAsync($"[covibe] The image build failed{(error is null ? "" : ": " + error)}\n");
                throw new PreviewDeployException($"The image build from {containerFile} failed{(error is null ? "" : ": " + error)}. See the deploy's log.");
            }
            var argv = (image.Config?.Entrypoint ?? []).Concat(image.Config?.Cmd ?? []).ToList();
            if (argv.Count == 0)
            {
                throw new PreviewDeployException($"The image built from {containerFile} has no CMD or ENTRYPOINT to start the app with.");
            }
            int? exposed = image.Config?.ExposedPorts?.Keys.Select(k => int.TryParse(k.Split('/')[0], out var p) ? p : (int?)null).FirstOrDefault(p => p is not null);
            var start = "exec " + string.Join(' ', argv.Select(a => "'" + a.Replace("'", "'\\''", StringComparison.Ordinal) + "'"));
            return (tag, start, string.IsNullOrEmpty(image.Config?.WorkingDir) ? "/" : image.Config.WorkingDir, exposed);
        }
        finally
        {
            File.Delete(context);
        }
    }

    private static string StartingLine(PreviewDeploy deploy, PreviewPlan plan) =>
        $"[covibe] Commit {Short(deploy.Commit)} built ({plan.Type}); starting: {plan.Start ?? (plan.ContainerFile is { } file ? $"the image built from {file}" : $"the files in {plan.StaticRoot ?? "."}")}";

    /// <summary>Follows the job until the app answers its health check; throws with the reason when it will not.</summary>
    private async Task WaitHealthyAsync(PreviewDeploy deploy, IExecutionBackend backend, AgentProcess process, int port, string healthPath, CancellationToken cancellationToken)
    {
        var marker = System.Text.Encoding.UTF8.GetBytes("[covibe] Commit " + Short(deploy.Commit) + " built");
        var buffer = new byte[64 * 1024];
        var seen = new List<byte>();
        long offset = 0;
        var built = false;
        var started = time.GetTimestamp();
        var buildTimeout = TimeSpan.FromSeconds(options.Value.BuildTimeoutSeconds);
        var startTimeout = TimeSpan.FromSeconds(options.Value.StartTimeoutSeconds);
        while (true)
        {
            if (!built)
            {
                int n;
                while ((n = await backend.ReadOutputAsync(process, offset, buffer, cancellationToken)) > 0)
                {
                    offset += n;
                    seen.AddRange(buffer.AsSpan(0, n));
                    if (seen.ToArray().AsSpan().IndexOf(marker) >= 0)
                    {
                        built = true;
                        started = time.GetTimestamp();
                        await UpdateAsync(deploy.Id, d => d.Status = PreviewStatuses.Starting, cancellationToken);
                        PreviewsLog.DeployStatus(logger, deploy.Id, deploy.TeamId, PreviewStatuses.Starting, deploy.Commit);
                        await events.ChangedAsync(deploy.TeamId, cancellationToken);
                        break;
                    }
                    if (seen.Count > marker.Length)
                    {
                        seen.RemoveRange(0, seen.Count - marker.Length);
                    }
                }
            }
            if (built && await AnswersAsync(port, healthPath, cancellationToken))
            {
                return;
            }
            var state = await backend.ProbeAsync(process, cancellationToken);
            if (state.State is AgentRunState.Exited or AgentRunState.Gone)
            {
                var code = state.ExitCode is { } c ? $" (exit code {c})" : "";
                throw new PreviewDeployException(built
                    ? $"The app stopped{code} before it answered its health check (GET {healthPath} on $PORT). See the deploy's log."
                    : $"The build failed{code}. See the deploy's log.");
            }
            var elapsed = time.GetElapsedTime(started);
            if (!built && elapsed > buildTimeout)
            {
                throw new PreviewDeployException($"The build took longer than {buildTimeout.TotalSeconds:0} s and was stopped.");
            }
            if (built && elapsed > startTimeout)
            {
                throw new PreviewDeployException(
                    $"The app did not answer GET {healthPath} on port {port} within {startTimeout.TotalSeconds:0} s. It must listen on $PORT (127.0.0.1); see the deploy's log.");
            }
            // Often at first (most apps are up within a second), then less.
            await Task.Delay(TimeSpan.FromMilliseconds(elapsed < TimeSpan.FromSeconds(10) ? 50 : 250), time, cancellationToken);
        }
    }

    private async Task<bool> AnswersAsync(int port, string path, CancellationToken cancellationToken)
    {
        try
        {
            using var response = await _health.GetAsync(new Uri($"http://127.0.0.1:{port}{path}"), HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            return (int)response.StatusCode < 400;
        }
        catch (HttpRequestException)
        {
            return false;
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
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
        proxy.Switched(teamId);
        events.Updated(teamId, urls.Origin(teamId) + "/", deploy.Commit);
        await events.ChangedAsync(teamId, cancellationToken);
        if (old is not null && old.Id != deploy.Id)
        {
            _ = RetireAsync(old);
        }
        return true;
    }

    /// <summary>Lets the replaced version finish what it serves, stops it, and removes deploys beyond <c>KeepDeploys</c>.</summary>
    private async Task RetireAsync(PreviewDeploy old)
    {
        try
        {
            await StopAsync(old, TimeSpan.FromSeconds(options.Value.DrainSeconds), _stopping);
            DeleteFiles(Path.Combine(Root, old.TeamId, old.Id));
            await RemoveImageAsync(old);
            await PruneAsync(old.TeamId, _stopping);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            PreviewsLog.WorkerFailed(logger, old.TeamId, e);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task PruneAsync(string teamId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var old = await db.PreviewDeploys.Where(d => d.TeamId == teamId)
            .OrderByDescending(d => d.CreatedAt).ThenByDescending(d => d.Id).Skip(options.Value.KeepDeploys + 1).ToListAsync(cancellationToken);
        foreach (var deploy in old.Where(d => !PreviewStatuses.InProgress(d.Status) && d.Status != PreviewStatuses.Live))
        {
            if (deploy.RuntimeDirectory is { } runtime && Path.GetFileName(runtime) == RuntimeName(deploy))
            {
                DeleteFiles(runtime);
            }
            db.PreviewDeploys.Remove(deploy);
        }
        await db.SaveChangesAsync(cancellationToken);
    }

    /// <summary>Looks for the live versions that stopped on their own, and deploys their commit again.</summary>
    private async Task WatchLiveAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var live = await db.PreviewDeploys.Where(d => d.Status == PreviewStatuses.Live).ToListAsync(cancellationToken);
        var changed = new List<string>();
        foreach (var deploy in live)
        {
            if (deploy.Process is not { } process
                || (await backends.Get(process.Backend).ProbeAsync(process, cancellationToken)).State is not (AgentRunState.Exited or AgentRunState.Gone))
            {
                continue;
            }
            PreviewsLog.LiveStopped(logger, deploy.TeamId, deploy.Id);
            var now = time.GetUtcNow().UtcDateTime;
            Finish(deploy, PreviewStatuses.Failed, "The live version stopped on its own; it is being deployed again.", now);
            var preview = await db.Previews.SingleOrDefaultAsync(p => p.TeamId == deploy.TeamId, cancellationToken);
            if (preview is not null && preview.LiveDeployId == deploy.Id)
            {
                preview.LiveDeployId = null;
                proxy.Switched(deploy.TeamId);
                PreviewService.Queue(db, deploy.TeamId, deploy.Commit, "restart", now);
                changed.Add(deploy.TeamId);
            }
        }
        await db.SaveChangesAsync(cancellationToken);
        foreach (var teamId in changed)
        {
            Wake(teamId);
            await events.ChangedAsync(teamId, cancellationToken);
        }
    }

    /// <summary>Seed 001's "GitHub downtime: preview updates queue, retry on recovery": the server looks at each branch itself and deploys a head it has not seen.</summary>
    private async Task CheckBranchesAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        foreach (var preview in await db.Previews.ToListAsync(cancellationToken))
        {
            string? head = null;
            try
            {
                head = await git.HeadAsync(preview.RepositoryUrl, preview.Branch, options.Value.AllowLocalRepositories, cancellationToken);
                preview.CheckError = head is null ? $"The repository has no branch '{preview.Branch}'." : null;
            }
            catch (PreviewGitException e)
            {
                preview.CheckError = e.Message;
                PreviewsLog.CheckFailed(logger, preview.TeamId, e.Message);
            }
            var now = time.GetUtcNow().UtcDateTime;
            preview.CheckedAt = now;
            var newest = await db.PreviewDeploys.Where(d => d.TeamId == preview.TeamId).OrderByDescending(d => d.CreatedAt).ThenByDescending(d => d.Id)
                .Select(d => d.Commit).FirstOrDefaultAsync(cancellationToken);
            var queue = head is not null && head != newest;
            if (queue)
            {
                PreviewService.Queue(db, preview.TeamId, head!, "check", now);
            }
            await db.SaveChangesAsync(cancellationToken);
            if (queue)
            {
                Wake(preview.TeamId);
                await events.ChangedAsync(preview.TeamId, cancellationToken);
            }
        }
    }

    /// <summary>Stops a deploy's job: SIGTERM after <paramref name="grace"/> (requests under way finish), SIGKILL if it lingers.</summary>
    private async Task StopAsync(PreviewDeploy deploy, TimeSpan grace, CancellationToken cancellationToken)
    {
        if (deploy.Process is not { } process)
        {
            return;
        }
        try
        {
            await StopProcessAsync(process, grace, cancellationToken);
        }
        finally
        {
            if (deploy.Port is { } port && deploy.RuntimeDirectory is { } runtime)
            {
                connections.Forget(port, PreviewConnections.SocketOf(runtime));
            }
        }
    }

    private async Task StopProcessAsync(AgentProcess process, TimeSpan grace, CancellationToken cancellationToken)
    {
        var backend = backends.Get(process.Backend);
        if (grace > TimeSpan.Zero)
        {
            await Task.Delay(grace, time, cancellationToken);
        }
        await backend.SignalAsync(process, AgentSignal.Terminate, cancellationToken);
        for (var i = 0; i < 50; i++)
        {
            if ((await backend.ProbeAsync(process, cancellationToken)).State is AgentRunState.Exited or AgentRunState.Gone)
            {
                return;
            }
            await Task.Delay(TimeSpan.FromMilliseconds(100), time, cancellationToken);
        }
        await backend.SignalAsync(process, AgentSignal.Kill, cancellationToken);
    }

    /// <summary>The repository's own image of a deploy that no longer runs, if it had one.</summary>
    private async Task RemoveImageAsync(PreviewDeploy deploy)
    {
        if (deploy.ProjectType != "container")
        {
            return;
        }
        try
        {
            await engine.Client.Images.DeleteImageAsync(ImageTag(deploy.TeamId, deploy.Id), new Docker.DotNet.Models.ImageDeleteParameters { Force = true }, CancellationToken.None);
        }
        catch (Exception e) when (e is Docker.DotNet.DockerApiException or HttpRequestException or IOException)
        {
            // Gone already, or the engine is away: nothing to keep.
        }
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
        await StopAsync(deploy, TimeSpan.Zero, CancellationToken.None);
        await RemoveImageAsync(deploy);
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

    /// <summary>A port of the range that no deploy holds and nothing listens on.</summary>
    private async Task<int> FreePortAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var held = (await db.PreviewDeploys.Where(d => d.Port != null && (d.Status == PreviewStatuses.Live || d.Status == PreviewStatuses.Building || d.Status == PreviewStatuses.Starting))
            .Select(d => d.Port!.Value).ToListAsync(cancellationToken)).ToHashSet();
        var (min, max) = (options.Value.PortMin, options.Value.PortMax);
        var start = Random.Shared.Next(min, max + 1);
        for (var i = 0; i <= max - min; i++)
        {
            var port = min + ((start - min + i) % (max - min + 1));
            if (!held.Contains(port) && IsFree(port))
            {
                return port;
            }
        }
        throw new PreviewDeployException($"No free port from {min} to {max} for the preview.");
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, port));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>The sandbox's user must own the files it builds in (the server exported them as itself).</summary>
    private async Task GiveToSandboxAsync(string directory, CancellationToken cancellationToken)
    {
        if (!UntrustedFiles.RunningAsRoot)
        {
            return; // the sandbox runs as this same user
        }
        var info = new ProcessStartInfo("chown") { UseShellExecute = false, RedirectStandardError = true };
        foreach (var arg in (string[])["-R", "-h", "-P", $"{isolation.Value.SandboxUid}:{isolation.Value.SandboxGid}", "--", directory])
        {
            info.ArgumentList.Add(arg);
        }
        using var chown = Process.Start(info)!;
        var errors = await chown.StandardError.ReadToEndAsync(cancellationToken);
        await chown.WaitForExitAsync(cancellationToken);
        if (chown.ExitCode != 0)
        {
            throw new PreviewDeployException($"The deploy's files could not be handed to the sandbox: {errors.Trim()}");
        }
    }

    private static void DeleteFiles(string path)
    {
        try
        {
            if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    internal static string Short(string commit) => commit.Length > 7 ? commit[..7] : commit;

    public override void Dispose()
    {
        _health.Dispose();
        base.Dispose();
    }

    private sealed class TeamWorker
    {
        public SemaphoreSlim Signal { get; } = new(0);
        public Task? Loop { get; set; }
        public CancellationTokenSource? Current { get; set; }
    }

    /// <summary>The repository's top-level files, regular files only (never through a symlink).</summary>
    private sealed class DirectoryFiles(string root) : IProjectFiles
    {
        public bool Exists(string name)
        {
            var info = new FileInfo(Path.Combine(root, name));
            return info.Exists && info.LinkTarget is null;
        }

        public string? Read(string name) => UntrustedFiles.ReadText(Path.Combine(root, name), 256 * 1024);
    }
}
