using Covibe.Server.Features.Git;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using Covibe.Execution;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Secrets;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Covibe.Server.Features.Events;

namespace Covibe.Server.Features.Boxes;

/// <summary>
/// How a box is made (seed 002's provisioner and VM lifecycle), each step recorded on the box and told to the team:
/// in a container, the branch fetched into the team's mirror, the box started from the default image or by
/// <c>devcontainer up</c> on a configuration made safe, the repository cloned inside as the box's user, the lifecycle
/// commands, the <c>.env</c>; on a VM, the clone there and the <c>.env</c> over SSH. <see cref="BoxProvisioner"/> decides
/// when and under which lease.
/// </summary>
public sealed class BoxBuilder(
    IDbContextFactory<CovibeDb> dbs,
    BoxWork work,
    BoxContainers containers,
    BoxVms vms,
    DevcontainerCli devcontainers,
    GitMirror git,
    SecretBox secrets,
    ITeamEvents events,
    IOptions<BoxesOptions> options,
    TimeProvider time,
    ILogger<BoxBuilder> logger)
{
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _mirrors = new();

    /// <summary>Makes the box, step by step, recording each step; throws (a <see cref="BoxProvisionException"/> and the like) when a step fails.</summary>
    public async Task MakeAsync(Box box, BoxLog log, CancellationToken cancellationToken)
    {
        if (box.Backend == "vm")
        {
            await MakeOnVmAsync(box, log, cancellationToken);
            return;
        }
        if (await containers.ProblemAsync(cancellationToken) is { } problem)
        {
            throw new BoxProvisionException($"Boxes run in containers, and {char.ToLowerInvariant(problem[0])}{problem[1..]}");
        }
        // 1. The repository, fetched into the team's mirror on this machine (no checkout here: nothing of it runs on the server).
        await StepAsync(box, BoxSteps.Clone, log, $"Fetching {box.Branch} of {box.RepoUrl}", cancellationToken);
        var mirror = work.MirrorPath(box.TeamId, box.RepoUrl);
        var gate = _mirrors.GetOrAdd(mirror, _ => new SemaphoreSlim(1, 1));
        string commit;
        await gate.WaitAsync(cancellationToken);
        try
        {
            commit = await git.FetchAsync(mirror, box.RepoUrl, box.Branch, options.Value.AllowLocalRepositories, TimeSpan.FromMinutes(10), cancellationToken);
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
        var spec = containers.Spec(box.TeamId, box.Id, workspace, runs, mirror);

        // 2. The box's container, and the repository cloned inside it as the box's user.
        string container, runAs, image, inside;
        string? context = null;
        if (config is null)
        {
            await StepAsync(box, BoxSteps.Container, log, "Starting the box from the default image", cancellationToken, b => b.Commit = commit);
            (container, var user, image) = await containers.CreateDefaultAsync(spec, cancellationToken);
            runAs = user;
            inside = HostSandbox.Workspace;
        }
        else
        {
            await StepAsync(box, BoxSteps.Devcontainer, log, "Running devcontainer up", cancellationToken, b => { b.Commit = commit; b.Devcontainer = true; });
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
            image = (await containers.Docker.Containers.InspectContainerAsync(container, cancellationToken)).Config?.Image ?? "devcontainer";
        }
        var ids = runAs.Split(':');
        foreach (var path in new[] { workspace, runs })
        {
            Own(path, uint.Parse(ids[0], System.Globalization.CultureInfo.InvariantCulture), uint.Parse(ids[1], System.Globalization.CultureInfo.InvariantCulture));
        }
        await SaveAsync(box.Id, b => { b.Target = container; b.RunAs = runAs; b.Image = image; b.Workspace = inside; }, cancellationToken);
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

        // 3. The .env, into the box's memory only.
        if (box.Env is not null)
        {
            await StepAsync(box, BoxSteps.Env, log, "Writing the .env into the box", cancellationToken);
            await InjectEnvAsync(box, cancellationToken);
        }

        await ReadyAsync(box, log, cancellationToken);
    }

    /// <summary>
    /// A box on a VM: the VM (a member's own, or the least loaded of the operator's pool) clones the branch into the box's
    /// directory as its user; the <c>.env</c> goes through SSH's stdin. The VM's own tools are the box's environment.
    /// </summary>
    private async Task MakeOnVmAsync(Box box, BoxLog log, CancellationToken cancellationToken)
    {
        var target = box.Target ?? await vms.ChoosePoolVmAsync(cancellationToken)
            ?? throw new BoxProvisionException("Every VM of the operator's pool holds as many boxes as its maxUsers allows.");
        await StepAsync(box, BoxSteps.Clone, log, $"Cloning {box.Branch} of {box.RepoUrl} on VM {target}", cancellationToken, b =>
        {
            b.Target = target;
            b.Workspace = "~/" + BoxVms.RepoDirectory(b.Id);
        });
        box.Target = target;
        await vms.CloneAsync(target, box, log, cancellationToken);
        await SaveAsync(box.Id, b => b.Commit = box.Commit, cancellationToken);
        if (box.Env is not null)
        {
            await StepAsync(box, BoxSteps.Env, log, "Writing the .env on the VM", cancellationToken);
            await InjectEnvAsync(box, cancellationToken);
        }
        await ReadyAsync(box, log, cancellationToken);
    }

    private async Task ReadyAsync(Box box, BoxLog log, CancellationToken cancellationToken)
    {
        await StepAsync(box, BoxSteps.Ready, log, "Ready", cancellationToken, b =>
        {
            b.Status = BoxStatuses.Ready;
            b.ReadyAt = time.GetUtcNow().UtcDateTime;
            b.LeaseHolder = null;
            b.LeaseExpiresAt = null;
        });
        if (box.PoolId is { } poolId)
        {
            await using var db = await dbs.CreateDbContextAsync(cancellationToken);
            await db.BoxPools.Where(p => p.Id == poolId)
                .ExecuteUpdateAsync(s => s.SetProperty(p => p.Failures, 0).SetProperty(p => p.LastError, (string?)null), cancellationToken);
            work.Reconcile();
        }
    }

    /// <summary>Writes the box's sealed <c>.env</c> into it (again, after a restart: it lives in the box's memory).</summary>
    public async Task InjectEnvAsync(Box box, CancellationToken cancellationToken)
    {
        var env = secrets.Open(box.Env!, BoxSecrets.EnvOwner(box.TeamId, box.Id), BoxSecrets.EnvPurpose);
        try
        {
            if (box.Backend == "vm")
            {
                await vms.WriteEnvAsync(box.Target!, box.Id, env, cancellationToken);
            }
            else
            {
                await containers.WriteEnvAsync(box.Target!, box.RunAs!, env, cancellationToken);
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(env);
        }
    }

    private async Task StepAsync(Box box, string step, BoxLog log, string line, CancellationToken cancellationToken, Action<Box>? change = null)
    {
        log.Line($"[covibe] {line}");
        BoxesLog.Step(logger, box.Id, box.TeamId, step);
        var saved = await SaveAsync(box.Id, b =>
        {
            b.Step = step;
            change?.Invoke(b);
        }, cancellationToken);
        if (saved.HolderId is not null)
        {
            await BroadcastAsync(saved, cancellationToken);
        }
    }

    private async Task<Box> SaveAsync(string id, Action<Box> change, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var box = await db.Boxes.SingleAsync(b => b.Id == id, cancellationToken);
        if (box.Status == BoxStatuses.Released)
        {
            throw new OperationCanceledException("The box was released.");
        }
        change(box);
        await db.SaveChangesAsync(cancellationToken);
        return box;
    }

    /// <summary>Tells the team about a held box's change (<c>box_updated</c>).</summary>
    public async Task BroadcastAsync(Box box, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        events.Publish(box.TeamId, new BoxUpdatedMessage(await BoxService.DtoAsync(db, box, cancellationToken)));
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
