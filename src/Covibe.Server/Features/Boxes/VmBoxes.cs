using Covibe.Execution;
using Covibe.Server.Data;
using Covibe.Server.Features.Vms;
using Microsoft.EntityFrameworkCore;
using Covibe.Execution.Ssh;
using Covibe.Server.Features.Git;
using Covibe.Server.Features.Repositories;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Boxes;

/// <summary>
/// Boxes on VMs over SSH (seed 002's SSH provisioner): a member's own VM, or one of the operator's pool VMs (seed 000's
/// <c>vm-instances.json</c>, its key loaded into the server's ssh-agent, never copied). A box there is a directory in the
/// VM user's home, <c>~/covibe-boxes/&lt;id&gt;/repo</c>, cloned by the VM itself, or, for a repository the server logs in
/// to (the team's, with its deploy key or token), from a bundle of it the server fetched and copied there (the credential
/// never goes to the VM); the <c>.env</c> goes through the SSH session's stdin into a 0600 file; agents and terminals run
/// there as on any VM.
/// </summary>
public sealed class VmBoxes(
    VmConnector vms, SshClient ssh, VmPool pool, IDbContextFactory<CovibeDb> dbs, BoxProgress progress, BoxWork work, GitMirror git, RepositoryAccess repositories,
    IOptions<BoxesOptions> options) : IBoxKind
{
    public const string KindName = "vm";

    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(10);

    public string Name => KindName;

    public string EnvStep => "Writing the .env on the VM";

    /// <summary>On the VM's disk, readable by its user only: it survives the server.</summary>
    public bool EnvInMemory => false;

    public Task<string?> ProblemAsync(CancellationToken cancellationToken) => Task.FromResult<string?>(null);

    public Task<bool> UnreachableAsync(CancellationToken cancellationToken) => Task.FromResult(false);

    /// <summary>
    /// The VM (a member's own, or the least loaded of the operator's pool) clones the branch into the box's directory as
    /// its user. The VM's own tools are the box's environment.
    /// </summary>
    public async Task MakeAsync(Box box, BoxLog log, CancellationToken cancellationToken)
    {
        var target = box.Target ?? await ChoosePoolVmAsync(cancellationToken)
            ?? throw new BoxProvisionException("Every VM of the operator's pool holds as many boxes as its maxUsers allows.");
        await progress.StepAsync(box, BoxSteps.Clone, log, $"Cloning {box.Branch} of {box.RepoUrl} on VM {target}", cancellationToken, b =>
        {
            b.Target = target;
            b.Workspace = "~/" + RepoDirectory(b.Id);
        });
        box.Target = target;
        await CloneAsync(target, box, log, cancellationToken);
        await progress.SaveAsync(box.Id, b => b.Commit = box.Commit, cancellationToken);
    }

    public Task WriteEnvAsync(Box box, byte[] env, CancellationToken cancellationToken) => WriteEnvAsync(box.Target!, box.Id, env, cancellationToken);

    public Task<bool> BringBackAsync(Box box, CancellationToken cancellationToken) => Task.FromResult(true);

    /// <summary>A VM's box keeps its <c>.env</c> on the VM's disk: nothing to write again.</summary>
    public Task WatchStartsAsync(Action<string> started, CancellationToken cancellationToken) => Task.Delay(System.Threading.Timeout.Infinite, cancellationToken);

    public async Task RemoveAsync(Box box, CancellationToken cancellationToken)
    {
        if (box.Target is { } vm)
        {
            await RemoveAsync(vm, box.Id, cancellationToken);
        }
    }

    /// <summary>The box's repository on the VM, relative to the VM user's home.</summary>
    public static string RepoDirectory(string boxId) => $"covibe-boxes/{boxId}/repo";

    /// <summary>Whether the operator's pool has VMs boxes can use.</summary>
    public bool HasPool => pool.Instances.Any(Usable);

    /// <summary>The pool VM with the fewest live boxes and room for one more (a VM takes at most its <c>maxUsers</c> boxes); null when all are full.</summary>
    private async Task<string?> ChoosePoolVmAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var load = await db.Boxes.Where(b => b.Backend == KindName && b.Target != null && b.Target.StartsWith(VmConnector.PoolPrefix)
                && (b.Status == BoxStatuses.Provisioning || b.Status == BoxStatuses.Ready))
            .GroupBy(b => b.Target!).Select(g => new { g.Key, Count = g.Count() }).ToDictionaryAsync(g => g.Key, g => g.Count, cancellationToken);
        return pool.Instances.Where(Usable)
            .Select(i => (Target: VmConnector.PoolPrefix + i.Id, Load: load.GetValueOrDefault(VmConnector.PoolPrefix + i.Id), Room: i.MaxUsers ?? int.MaxValue))
            .Where(i => i.Load < i.Room).OrderBy(i => i.Load).Select(i => i.Target).FirstOrDefault();
    }

    /// <summary>Clones the branch at the commit into the box's directory on the VM; what git prints goes to the box's log.</summary>
    private async Task CloneAsync(string target, Box box, BoxLog log, CancellationToken cancellationToken)
    {
        var connection = await ConnectAsync(target, cancellationToken);
        var source = box.RepoUrl;
        var remote = await repositories.RemoteAsync(box.TeamId, box.RepoUrl, options.Value.AllowLocalRepositories, cancellationToken);
        if (remote.Access is not null)
        {
            // The VM cannot log in to it (the credential stays here): the branch is fetched here and copied there as a bundle.
            source = await CopyBundleAsync(connection, box, remote, log, cancellationToken);
        }
        var result = await Run(connection, BoxClone.Argv(source, box.Branch, box.Commit, RepoDirectory(box.Id), box.RepoUrl,
            "[covibe] The repository has a dev container configuration: a box on a VM runs with the VM's own tools (boxes in containers use it)."), null, cancellationToken);
        log.Line(result.Stderr.TrimEnd());
        if (source != box.RepoUrl)
        {
            await Run(connection, ["sh", "-c", "rm -f \"$HOME/$1\"", "covibe-bundle-rm", source], null, cancellationToken);
        }
        if (result.ExitCode != 0)
        {
            throw new BoxProvisionException(BoxClone.Failure(result.ExitCode, "on the VM"));
        }
        box.Commit = result.Stdout.Trim().Split('\n')[^1];
    }

    /// <summary>Fetches the box's branch into the team's mirror here, and copies it to the VM as a bundle: its path there, relative to the VM user's home.</summary>
    private async Task<string> CopyBundleAsync(SshTarget connection, Box box, GitRemote remote, BoxLog log, CancellationToken cancellationToken)
    {
        var mirror = work.MirrorPath(box.TeamId, box.RepoUrl);
        log.Line($"[covibe] Fetching {box.Branch} on the server, with the team's credential, to copy it to the VM");
        string commit;
        try
        {
            commit = await git.FetchAsync(mirror, remote, box.Branch, TimeSpan.FromMinutes(10), cancellationToken);
        }
        catch (GitMirrorException e)
        {
            throw new BoxProvisionException($"The repository could not be fetched: {e.Message}");
        }
        byte[] bundle;
        try
        {
            bundle = await TreeBundles.CreateAsync(new WorkTree(mirror, commit, box.Branch, $"refs/heads/{box.Branch}"), cancellationToken);
        }
        catch (IOException e)
        {
            throw new BoxProvisionException(e.Message);
        }
        var path = $"covibe-boxes/{box.Id}/repo.bundle";
        var copied = await Run(connection, TreeBundles.CopyArgv(path), bundle, cancellationToken);
        if (copied.ExitCode != 0)
        {
            throw new BoxProvisionException($"The repository could not be copied to the VM (exit {copied.ExitCode}): {copied.Stderr.Trim()}");
        }
        log.Line($"[covibe] Copied {bundle.Length / 1024} KB to the VM");
        return path;
    }

    /// <summary>The <c>.env</c>, through the session's stdin into a file only the VM user can read. Never an argument, never logged.</summary>
    private async Task WriteEnvAsync(string target, string boxId, byte[] env, CancellationToken cancellationToken)
    {
        const string Script = "umask 077; f=\"$HOME/$1/.env\"; cat > \"$f.tmp\" && chmod 600 \"$f.tmp\" && mv -f \"$f.tmp\" \"$f\"";
        var connection = await ConnectAsync(target, cancellationToken);
        var result = await Run(connection, ["sh", "-c", Script, "covibe-env", RepoDirectory(boxId)], env, cancellationToken);
        if (result.ExitCode != 0)
        {
            throw new BoxProvisionException($"The .env could not be written on the VM (exit {result.ExitCode}).");
        }
    }

    /// <summary>Removes the box's directory from the VM.</summary>
    private async Task RemoveAsync(string target, string boxId, CancellationToken cancellationToken)
    {
        var connection = await ConnectAsync(target, cancellationToken);
        await Run(connection, ["sh", "-c", "rm -rf \"$HOME/$1\"", "covibe-box-rm", $"covibe-boxes/{boxId}"], null, cancellationToken);
    }

    private async Task<SshTarget> ConnectAsync(string target, CancellationToken cancellationToken)
    {
        try
        {
            return await vms.ConnectAsync(target, cancellationToken);
        }
        catch (SshException e)
        {
            throw new BoxProvisionException($"The VM could not be reached: {e.Message}");
        }
    }

    private async Task<SshResult> Run(SshTarget target, IReadOnlyList<string> argv, byte[]? stdin, CancellationToken cancellationToken)
    {
        try
        {
            return await ssh.RunAsync(target, argv, stdin, Timeout, cancellationToken);
        }
        catch (SshException e)
        {
            throw new BoxProvisionException($"The VM could not be reached: {e.Message}");
        }
    }

    private static bool Usable(VmInstance i) =>
        (i.Status ?? "available") == "available" && !string.IsNullOrEmpty(i.Username) && !string.IsNullOrEmpty(i.HostKeyFingerprint);
}
