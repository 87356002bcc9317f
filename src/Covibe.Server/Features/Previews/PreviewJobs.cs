using Covibe.Server.Features.Containers;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Covibe.Execution;
using Covibe.Execution.Containers;
using Covibe.Server.Data;
using Covibe.Server.Features.Machines;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Previews;

/// <summary>
/// A deploy's job: what runs and how. From a commit's exported files it detects the project, places it
/// (<see cref="MachineResolver"/>: sandboxed on this machine, or a container), builds the repository's own image
/// when it brings one, and starts build and app as one job under the agents' wrapper, on a port of seed 003's
/// range (a sandbox with its own network is reached through a Unix-socket bridge). Then it follows the job until
/// the app answers its health check, and stops it when it is done.
/// </summary>
public sealed partial class PreviewJobs(
    IDbContextFactory<CovibeDb> dbs, MachineResolver machines, ExecutionBackends backends, PreviewConnections connections, ContainerEngine engine,
    Workspaces workspaces, IOptions<PreviewsOptions> options, IOptions<IsolationOptions> isolation, TimeProvider time) : IDisposable
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

    private readonly HttpClient _health = new(connections.Handler()) { Timeout = Timeout.InfiniteTimeSpan };

    /// <summary>A started job: where it runs, the port it serves on (of this machine), and how it was detected.</summary>
    public sealed record Started(AgentProcess Process, IExecutionBackend Backend, int Port, PreviewPlan Plan);

    /// <summary>
    /// Starts the deploy of the files in <paramref name="files"/> (the commit's tree, exported by the server). A place that
    /// does not answer (the container engine stopped since it was asked) is known to be down then: placed again, the deploy
    /// runs on the fallback, its log saying why.
    /// </summary>
    public async Task<Started> StartAsync(string teamId, PreviewDeploy deploy, string files, CancellationToken cancellationToken)
    {
        try
        {
            return await StartOnceAsync(teamId, deploy, files, cancellationToken);
        }
        catch (PlaceUnreachableException)
        {
            return await StartOnceAsync(teamId, deploy, files, cancellationToken);
        }
    }

    private async Task<Started> StartOnceAsync(string teamId, PreviewDeploy deploy, string files, CancellationToken cancellationToken)
    {
        var placement = await machines.PlacePreviewAsync(teamId, files, cancellationToken);
        var inContainer = placement.InContainer;
        var plan = ProjectDetection.Detect(new DirectoryFiles(files), containers: inContainer);
        if (UntrustedFiles.RunningAsRoot && !placement.AsServerUser)
        {
            await GiveToSandboxAsync(files, cancellationToken); // sandboxed programs and containers run as the sandbox's user
        }
        var port = await FreePortAsync(cancellationToken);
        var appPort = plan.Port ?? port;
        var backend = placement.Jobs;
        var inside = placement.Inside(files);
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
        ServiceLaunch? launch = inContainer ? Service(teamId, deploy, port) with { ContainerPort = appPort } : null;
        if (plan.ContainerFile is { } containerFile)
        {
            var image = await BuildImageAsync(teamId, deploy, files, containerFile, cancellationToken);
            environment["HOME"] = "/tmp";
            environment["COVIBE_START"] = image.Start;
            appPort = plan.Port ?? image.Port ?? port;
            launch = Service(teamId, deploy, port) with { Image = image.Tag, ImageWorkingDirectory = image.WorkingDirectory, ContainerPort = appPort };
        }
        else if (!inContainer && plan.Port is { } fixedPort)
        {
            port = fixedPort; // on this machine an app that insists on its port is reached there
        }
        environment["PORT"] = appPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        environment["COVIBE_STARTING"] = StartingLine(deploy, plan);
        // A sandbox with a network of its own: the app is reached through a bridge on a Unix socket.
        var bridged = placement.OwnNetwork;
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
            placement.Launch(new AgentLaunch(RuntimeName(deploy), ["sh", "-c", Script, "covibe-preview"], "", environment, TeamId: teamId, Service: launch)),
            cancellationToken);
        if (bridged)
        {
            connections.Register(port, PreviewConnections.SocketOf(process.RuntimeDirectory));
        }
        return new Started(process, backend, port, plan);
    }

    internal static string RuntimeName(PreviewDeploy deploy) => "preview-" + deploy.Id;

    /// <summary>A deploy in a container: seed 003's name for it (one per deploy: the new version starts beside the old), under the preview limits.</summary>
    private static ServiceLaunch Service(string teamId, PreviewDeploy deploy, int port) =>
        new("preview", $"covibes_preview_{teamId}_{deploy.Id}", "deployId", port);

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
        // Its log can be read while it builds.
        await using (var db = await dbs.CreateDbContextAsync(cancellationToken))
        {
            await db.PreviewDeploys.Where(d => d.Id == deploy.Id).ExecuteUpdateAsync(u => u.SetProperty(d => d.RuntimeDirectory, runtime), cancellationToken);
        }
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
                    await engine.Containers.ReachAsync(() => engine.Client.Images.BuildImageFromDockerfileAsync(
                        new Docker.DotNet.Models.ImageBuildParameters { Dockerfile = containerFile, Tags = [tag], Remove = true, ForceRemove = true },
                        tar, null, null, progress, cancellationToken), cancellationToken);
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
                image = await engine.Containers.ReachAsync(() => engine.Client.Images.InspectImageAsync(tag, cancellationToken), cancellationToken);
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
            var start = "exec " + ShellWords.Join(argv);
            return (tag, start, string.IsNullOrEmpty(image.Config?.WorkingDir) ? "/" : image.Config.WorkingDir, exposed);
        }
        finally
        {
            File.Delete(context);
        }
    }

    private static string StartingLine(PreviewDeploy deploy, PreviewPlan plan) =>
        $"[covibe] Commit {PreviewDeployer.Short(deploy.Commit)} built ({plan.Type}); starting: {plan.Start ?? (plan.ContainerFile is { } file ? $"the image built from {file}" : $"the files in {plan.StaticRoot ?? "."}")}";

    /// <summary>Stops a deploy's job: SIGTERM after <paramref name="grace"/> (requests under way finish), SIGKILL if it lingers.</summary>
    public async Task StopAsync(PreviewDeploy deploy, TimeSpan grace, CancellationToken cancellationToken)
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
    public async Task RemoveImageAsync(PreviewDeploy deploy)
    {
        if (deploy.ProjectType != "container")
        {
            return;
        }
        try
        {
            await engine.Containers.ReachAsync(() => engine.Client.Images.DeleteImageAsync(ImageTag(deploy.TeamId, deploy.Id), new Docker.DotNet.Models.ImageDeleteParameters { Force = true }, CancellationToken.None), CancellationToken.None);
        }
        catch (Exception e) when (e is Docker.DotNet.DockerApiException or HttpRequestException or IOException)
        {
            // Gone already, or the engine is away: nothing to keep.
        }
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

    internal static void DeleteFiles(string path)
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

    public void Dispose() => _health.Dispose();
}
