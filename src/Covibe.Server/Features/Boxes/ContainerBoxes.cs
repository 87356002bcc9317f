using Covibe.Server.Features.Repositories;
using System.Collections.Concurrent;
using Covibe.Execution;
using Covibe.Server.Features.Git;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Boxes;

/// <summary>
/// Boxes in containers (the default kind): the branch fetched into the team's mirror on this machine, the box started
/// from the default image or by <c>devcontainer up</c> on a configuration made safe, the repository cloned inside as the
/// box's user, the lifecycle commands; its <c>.env</c> on a memory-only file system in the box (<see cref="BoxContainers"/>).
/// </summary>
public sealed class ContainerBoxes(
    BoxWork work, BoxContainers containers, DevcontainerCli devcontainers, GitMirror git, RepositoryAccess repositories, BoxProgress progress, IOptions<BoxesOptions> options) : IBoxKind
{
    public const string KindName = "container";

    private readonly ConcurrentDictionary<string, SemaphoreSlim> _mirrors = new();

    public string Name => KindName;

    public string EnvStep => "Writing the .env into the box";

    public bool EnvInMemory => true;

    public Task<string?> ProblemAsync(CancellationToken cancellationToken) => containers.ProblemAsync(cancellationToken);

    public Task<bool> UnreachableAsync(CancellationToken cancellationToken) => containers.DownAsync(cancellationToken);

    public async Task MakeAsync(Box box, BoxLog log, CancellationToken cancellationToken)
    {
        if (await containers.ProblemAsync(cancellationToken) is { } problem)
        {
            throw new BoxProvisionException($"Boxes run in containers, and {char.ToLowerInvariant(problem[0])}{problem[1..]}");
        }
        // 1. The repository, fetched into the team's mirror on this machine (no checkout here: nothing of it runs on the server).
        await progress.StepAsync(box, BoxSteps.Clone, log, $"Fetching {box.Branch} of {box.RepoUrl}", cancellationToken);
        var mirror = work.MirrorPath(box.TeamId, box.RepoUrl);
        var gate = _mirrors.GetOrAdd(mirror, _ => new SemaphoreSlim(1, 1));
        string commit;
        await gate.WaitAsync(cancellationToken);
        try
        {
            commit = await git.FetchAsync(mirror, await repositories.RemoteAsync(box.TeamId, box.RepoUrl, options.Value.AllowLocalRepositories, cancellationToken),
                box.Branch, TimeSpan.FromMinutes(10), cancellationToken);
            // The box reads it (mounted read-only) as its own user; on this machine the data directory around it stays the server's alone.
            File.SetUnixFileMode(mirror, (UnixFileMode)0b111_101_101);
        }
        finally
        {
            gate.Release();
        }
        string? configPath = null;
        string? config = null;
        foreach (var path in DevcontainerConfig.Paths)
        {
            if (await git.ReadFileAsync(mirror, commit, path, cancellationToken) is { } text)
            {
                (configPath, config) = (path, text);
                break;
            }
        }
        log.Line($"[covibe] At commit {commit}; {(config is null ? "no dev container configuration: the default image" : $"dev container configuration {configPath}")}.");
        var workspace = work.WorkspacePath(box.Id);
        var runs = work.RunsPath(box.Id);
        Directory.CreateDirectory(workspace);
        Directory.CreateDirectory(runs);
        var spec = await containers.SpecAsync(box.TeamId, box.Id, workspace, runs, mirror, cancellationToken);

        // 2. The box's container, and the repository cloned inside it as the box's user.
        string container, runAs, image, inside;
        string? context = null;
        if (config is null)
        {
            await progress.StepAsync(box, BoxSteps.Container, log, "Starting the box from the default image", cancellationToken, b => b.Commit = commit);
            (container, var user, image) = await containers.CreateDefaultAsync(spec, cancellationToken);
            runAs = user;
            inside = Isolated.Workspace;
        }
        else
        {
            await progress.StepAsync(box, BoxSteps.Devcontainer, log, "Running devcontainer up", cancellationToken, b => { b.Commit = commit; b.Devcontainer = true; });
            if (devcontainers.Problem() is { } missing)
            {
                throw new BoxProvisionException(missing);
            }
            context = Path.Combine(work.Root(box.Id), "context");
            await git.ExportAsync(mirror, commit, context, cancellationToken);
            var (safe, notes) = DevcontainerConfig.Sanitize(config, spec);
            foreach (var note in notes)
            {
                log.Line($"[covibe] devcontainer.json: {note}.");
            }
            await File.WriteAllTextAsync(Path.Combine(context, configPath!), safe, cancellationToken);
            var up = await devcontainers.UpAsync(context, box.Id, log, cancellationToken);
            container = spec.Name;
            var (uid, gid) = await containers.IdsAsync(container, up.RemoteUser, cancellationToken);
            runAs = $"{uid}:{gid}";
            inside = up.Workspace;
            image = (await containers.ReachAsync(() => containers.Docker.Containers.InspectContainerAsync(container, cancellationToken), cancellationToken)).Config?.Image ?? "devcontainer";
        }
        var ids = runAs.Split(':');
        foreach (var path in new[] { workspace, runs })
        {
            Own(path, uint.Parse(ids[0], System.Globalization.CultureInfo.InvariantCulture), uint.Parse(ids[1], System.Globalization.CultureInfo.InvariantCulture));
        }
        await progress.SaveAsync(box.Id, b => { b.Target = container; b.RunAs = runAs; b.Image = image; b.Workspace = inside; }, cancellationToken);
        box.Target = container;
        box.RunAs = runAs;
        await containers.MadeAsync(box.TeamId, box.Id, container, image, cancellationToken);
        log.Line($"[covibe] Cloning into {inside} inside the box");
        await containers.CloneAsync(container, runAs, box.RepoUrl, box.Branch, commit, log, cancellationToken);
        if (context is not null)
        {
            log.Line("[covibe] Running the dev container's lifecycle commands");
            await devcontainers.RunUserCommandsAsync(context, box.Id, log, cancellationToken);
            Directory.Delete(context, recursive: true);
        }
    }

    public Task WriteEnvAsync(Box box, byte[] env, CancellationToken cancellationToken) => containers.WriteEnvAsync(box.Target!, box.RunAs!, env, cancellationToken);

    public Task<bool> BringBackAsync(Box box, CancellationToken cancellationToken) => containers.EnsureRunningAsync(box.Target!, cancellationToken);

    public Task WatchStartsAsync(Action<string> started, CancellationToken cancellationToken) => containers.WatchStartsAsync(started, cancellationToken);

    public async Task RemoveAsync(Box box, CancellationToken cancellationToken)
    {
        if (await containers.ProblemAsync(cancellationToken) is null)
        {
            await containers.RemoveAsync(BoxContainers.ContainerName(box.TeamId, box.Id), cancellationToken);
        }
    }

    private static void Own(string path, uint uid, uint gid)
    {
        if (!UntrustedFiles.GiveTo(path, uid, gid))
        {
            // Not root: the box's user gets in through the mode (the data directory around it is the server's alone).
            File.SetUnixFileMode(path, (UnixFileMode)0b111_111_111);
        }
    }
}
