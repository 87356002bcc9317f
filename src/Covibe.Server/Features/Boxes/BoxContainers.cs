using Covibe.Server.Features.Containers;
using System.Globalization;
using System.Net;
using System.Text;
using Covibe.Execution;
using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.Extensions.Options;
using Covibe.Execution.Containers;

namespace Covibe.Server.Features.Boxes;

/// <summary>
/// A box's container in the engine (seed 002's VM lifecycle for the container backend): made from the default image,
/// or by <c>devcontainer up</c> (<see cref="DevcontainerCli"/>); the repository cloned inside it from the server's
/// read-only mirror, as the box's own user; the <c>.env</c> written through an exec's stdin onto a memory-only
/// file system in the box (<see cref="SecretsMount"/>), linked from the repository, so it is never on a disk.
/// </summary>
public sealed class BoxContainers(ContainerEngine engine, IOptions<ContainersOptions> containers)
{
    /// <summary>The server's mirror of the repository, read-only, to clone from without the network.</summary>
    public const string MirrorMount = "/covibe-mirror";

    /// <summary>A memory-only file system in every box: its <c>.env</c> lives there.</summary>
    public const string SecretsMount = "/run/covibe";

    public static string ContainerName(string teamId, string boxId) => $"covibes_box_{teamId}_{boxId}";

    public static Dictionary<string, string> Labels(string teamId, string boxId) => new()
    {
        [ManagedContainers.ManagedLabel] = "true",
        [ManagedContainers.TypeLabel] = "box",
        [ManagedContainers.TeamLabel] = teamId,
        [BoxLabel] = boxId,
    };

    public const string BoxLabel = "covibe.box";

    public DockerClient Docker => engine.Client;

    public string EngineAddress => containers.Value.EngineAddress;

    /// <summary>The operator's limits and placement for a box's container.</summary>
    public async Task<BoxContainerSpec> SpecAsync(string teamId, string boxId, string workspace, string runs, string mirror, CancellationToken cancellationToken)
    {
        var o = containers.Value;
        return new BoxContainerSpec(ContainerName(teamId, boxId), Labels(teamId, boxId), workspace, runs, mirror, await engine.Containers.Networks.ForAsync(teamId, cancellationToken),
            ContainersOptions.Bytes(o.AgentMemory), o.AgentCpus, 1024);
    }

    /// <summary>The box from the default image (no dev container config): the same user, limits and walls as agent containers.</summary>
    public async Task<(string Container, string User, string Image)> CreateDefaultAsync(BoxContainerSpec spec, CancellationToken cancellationToken)
    {
        var managed = engine.Containers;
        var image = managed.Settings.Image;
        var host = managed.Settings.Limited([$"{spec.WorkspaceSource}:{Isolated.Workspace}:rw", $"{spec.RunsSource}:{ContainerExecBackend.RuntimeMount}:rw", $"{spec.MirrorSource}:{MirrorMount}:ro"],
            network: spec.Network);
        host.Tmpfs = new Dictionary<string, string> { [SecretsMount] = "rw,nosuid,nodev,noexec,size=1m,mode=1777" };
        try
        {
            await managed.ReachAsync(() => Docker.Containers.CreateContainerAsync(new CreateContainerParameters
            {
                Name = spec.Name,
                Image = image,
                User = managed.Settings.UserSpec,
                WorkingDir = Isolated.Workspace,
                Cmd = ["sleep", "infinity"],
                Env = [$"HOME={Isolated.Workspace}", "USER=covibe", "LOGNAME=covibe", "PATH=/usr/local/bin:/usr/bin:/bin"],
                Labels = new Dictionary<string, string>(spec.Labels),
                HostConfig = host,
            }, cancellationToken), cancellationToken);
        }
        catch (DockerApiException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            throw new ContainerImageMissingException(image);
        }
        catch (DockerApiException e)
        {
            throw new IOException($"The container engine refused to create the box: {ManagedContainers.EngineMessage(e)}");
        }
        try
        {
            await managed.ReachAsync(() => Docker.Containers.StartContainerAsync(spec.Name, new ContainerStartParameters(), cancellationToken), cancellationToken);
        }
        catch (DockerApiException e)
        {
            await RemoveAsync(spec.Name, CancellationToken.None);
            throw new IOException($"The container engine could not start the box: {ManagedContainers.EngineMessage(e)}");
        }
        return (spec.Name, managed.Settings.UserSpec, image);
    }

    /// <summary>Records the box's container with the team's containers (seed 003's container_environments).</summary>
    public Task MadeAsync(string teamId, string boxId, string container, string image, CancellationToken cancellationToken) =>
        engine.Containers.MadeAsync(new ContainerMade(teamId, "box", container, new Dictionary<string, string?> { ["boxId"] = boxId, ["image"] = image }), cancellationToken);

    /// <summary>Starts the box's container again if it stopped (the machine restarted); false when it is gone.</summary>
    public async Task<bool> EnsureRunningAsync(string container, CancellationToken cancellationToken)
    {
        try
        {
            return await engine.Containers.ReachAsync(async () =>
            {
                var inspect = await Docker.Containers.InspectContainerAsync(container, cancellationToken);
                if (inspect.State?.Running != true)
                {
                    await Docker.Containers.StartContainerAsync(container, new ContainerStartParameters(), cancellationToken);
                }
                return true;
            }, cancellationToken);
        }
        catch (DockerContainerNotFoundException)
        {
            return false;
        }
    }

    /// <summary>Runs <paramref name="argv"/> in the box as <paramref name="user"/>, its output to <paramref name="log"/>; answers the exit code.</summary>
    public async Task<long> RunAsync(string container, string user, IReadOnlyList<string> argv, BoxLog? log, CancellationToken cancellationToken, byte[]? stdin = null)
    {
        try
        {
            return await engine.Containers.ReachAsync(() => RunOnceAsync(container, user, argv, log, stdin, cancellationToken), cancellationToken);
        }
        catch (DockerApiException e)
        {
            throw new IOException($"The box did not run the command: {ManagedContainers.EngineMessage(e)}");
        }
    }

    private async Task<long> RunOnceAsync(string container, string user, IReadOnlyList<string> argv, BoxLog? log, byte[]? stdin, CancellationToken cancellationToken)
    {
        var exec = await Docker.Exec.CreateContainerExecAsync(container, new ContainerExecCreateParameters
        {
            Cmd = [.. argv],
            User = user,
            AttachStdin = stdin is not null,
            AttachStdout = true,
            AttachStderr = true,
        }, cancellationToken);
        using (var stream = await Docker.Exec.StartContainerExecAsync(exec.ID, new ContainerExecStartParameters(), cancellationToken))
        {
            if (stdin is not null)
            {
                await stream.WriteAsync(stdin, 0, stdin.Length, cancellationToken);
                stream.CloseWrite();
            }
            var buffer = new byte[16384];
            while (true)
            {
                var read = await stream.ReadOutputAsync(buffer, 0, buffer.Length, cancellationToken);
                if (read.EOF)
                {
                    break;
                }
                log?.Append(buffer.AsSpan(0, read.Count));
            }
        }
        return (await Docker.Exec.InspectContainerExecAsync(exec.ID, cancellationToken)).ExitCode ?? -1;
    }

    /// <summary>The numeric uid and gid of <paramref name="user"/> inside the box.</summary>
    public async Task<(uint Uid, uint Gid)> IdsAsync(string container, string user, CancellationToken cancellationToken)
    {
        var output = new BoxLog(null);
        var code = await RunAsync(container, user, ["sh", "-c", "id -u; id -g"], output, cancellationToken);
        var lines = output.Text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (code != 0 || lines.Length < 2 || !uint.TryParse(lines[0], CultureInfo.InvariantCulture, out var uid) || !uint.TryParse(lines[1], CultureInfo.InvariantCulture, out var gid))
        {
            throw new IOException($"The box's user '{user}' could not be found inside it.");
        }
        return (uid, gid);
    }

    /// <summary>Clones the branch from the mirror into the workspace, as the box's user, and points <c>origin</c> at the real repository.</summary>
    public async Task CloneAsync(string container, string user, string repoUrl, string branch, string commit, BoxLog log, CancellationToken cancellationToken)
    {
        var code = await RunAsync(container, user, BoxClone.Argv(MirrorMount, branch, commit, Isolated.Workspace, repoUrl), log, cancellationToken);
        if (code != 0)
        {
            throw new BoxProvisionException(BoxClone.Failure(code, "inside the box"));
        }
    }

    /// <summary>
    /// Writes the <c>.env</c> through the exec's stdin onto the box's memory-only file system (mode 0600, the box user's)
    /// and links it from the repository's root. The plaintext is never in an argument, a log or a file of this machine.
    /// </summary>
    public async Task WriteEnvAsync(string container, string user, byte[] env, CancellationToken cancellationToken)
    {
        const string Script = """
            umask 077
            cat > "$1/.env.$$" && chmod 600 "$1/.env.$$" && mv -f "$1/.env.$$" "$1/.env" && ln -sfn "$1/.env" "$2/.env"
            """;
        // What the script prints is about files, never their contents: it may go into the error.
        string[] argv = ["sh", "-c", Script, "covibe-env", SecretsMount, Isolated.Workspace];
        var output = new BoxLog(null);
        var code = await RunAsync(container, user, argv, output, cancellationToken, env);
        if (code != 0)
        {
            // Podman 4.3 gives a restarted container's memory-only file system back as root's, 0755 (its mode is not kept,
            // whether asked for as a tmpfs or as a mount): root in the box, its owner, opens it to the box's user again.
            await RunAsync(container, "0", ["chmod", "1777", SecretsMount], null, cancellationToken);
            output = new BoxLog(null);
            code = await RunAsync(container, user, argv, output, cancellationToken, env);
        }
        if (code != 0)
        {
            throw new BoxProvisionException($"The .env could not be written into the box (exit {code}: {output.Text.Trim()}).");
        }
    }

    /// <summary>
    /// Watches the engine for box containers starting (restarted, or started with the machine), calling
    /// <paramref name="started"/> with each one's box id, until cancelled; throws <see cref="PlaceUnreachableException"/>
    /// when the engine stops answering (the events are lost with it: whoever watches restores every box once it is back).
    /// </summary>
    public async Task WatchStartsAsync(Action<string> started, CancellationToken cancellationToken)
    {
        var events = new Progress<Message>(m =>
        {
            if (m.Actor?.Attributes is { } attributes && attributes.TryGetValue(BoxLabel, out var boxId))
            {
                started(boxId);
            }
        });
        await engine.Containers.ReachAsync(() => Docker.System.MonitorEventsAsync(new ContainerEventsParameters
        {
            Filters = new Dictionary<string, IDictionary<string, bool>>
            {
                ["type"] = new Dictionary<string, bool> { ["container"] = true },
                ["event"] = new Dictionary<string, bool> { ["start"] = true },
                ["label"] = new Dictionary<string, bool> { [$"{ManagedContainers.TypeLabel}=box"] = true },
            },
        }, events, cancellationToken), cancellationToken);
    }

    public async Task RemoveAsync(string container, CancellationToken cancellationToken) => await engine.Containers.RemoveAsync(container, cancellationToken);

    public Task<string?> ProblemAsync(CancellationToken cancellationToken) => engine.ProblemAsync(cancellationToken);

    public Task<bool> DownAsync(CancellationToken cancellationToken) => engine.DownAsync(cancellationToken);

    /// <inheritdoc cref="ManagedContainers.ReachAsync{T}(Func{Task{T}}, CancellationToken)"/>
    public Task<T> ReachAsync<T>(Func<Task<T>> call, CancellationToken cancellationToken) => engine.Containers.ReachAsync(call, cancellationToken);
}

/// <summary>A provisioning step failed; the message is for the team (never a secret).</summary>
public sealed class BoxProvisionException(string message) : Exception(message);

/// <summary>
/// A box's provisioning log (what clone, devcontainer and lifecycle commands print), in a file of the box's server
/// directory, read by byte position; or in memory when <see cref="Path"/> is null. Never holds the <c>.env</c>.
/// </summary>
public sealed class BoxLog(string? path)
{
    private readonly Lock _lock = new();
    private readonly System.Buffers.ArrayBufferWriter<byte> _memory = new();

    public string? Path { get; } = path;

    public string Text
    {
        get
        {
            lock (_lock)
            {
                return Path is null ? Encoding.UTF8.GetString(_memory.WrittenSpan) : File.Exists(Path) ? File.ReadAllText(Path) : "";
            }
        }
    }

    public void Line(string text) => Append(Encoding.UTF8.GetBytes(text + "\n"));

    public void Append(ReadOnlySpan<byte> bytes)
    {
        lock (_lock)
        {
            if (Path is null)
            {
                bytes.CopyTo(_memory.GetSpan(bytes.Length));
                _memory.Advance(bytes.Length);
                return;
            }
            using var file = new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
            file.Write(bytes);
        }
    }
}
