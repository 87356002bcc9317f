using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using Docker.DotNet;
using Docker.DotNet.Models;

namespace Covibe.Execution.Containers;

/// <summary>Limits and placement of the containers Covibe creates: seed 003's defaults.</summary>
public sealed record ContainerLimits(long MemoryBytes, long MemoryReservationBytes, double Cpus, double CpuReservation, long PidsLimit = 1024);

/// <summary>What every container is made from: only the operator chooses these, never a request.</summary>
public sealed record ContainerSettings(string Image, string Network, ContainerLimits AgentLimits, (uint Uid, uint Gid) User, ContainerLimits? ServiceLimits = null)
{
    /// <summary>The user containers run as, as the engine wants it.</summary>
    public string UserSpec => $"{User.Uid.ToString(CultureInfo.InvariantCulture)}:{User.Gid.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Seed 003's limits (the agent's, or with <paramref name="limits"/> another's), no capabilities, no new privileges, and only the given mounts.</summary>
    public HostConfig Limited(IList<string> binds, ContainerLimits? limits = null, string? network = null) => Limits(binds, limits ?? AgentLimits, network ?? Network);

    /// <summary>The <see cref="Network"/> that means a network of each team's own (<see cref="TeamNetworks.ForAsync"/>).</summary>
    public const string PerTeam = "team";

    private static HostConfig Limits(IList<string> binds, ContainerLimits limits, string network) => new()
    {
        Binds = binds,
        NetworkMode = network,
        Memory = limits.MemoryBytes,
        MemoryReservation = limits.MemoryReservationBytes,
        NanoCPUs = (long)(limits.Cpus * 1_000_000_000),
        CPUShares = (long)Math.Max(2, limits.CpuReservation * 1024),
        PidsLimit = limits.PidsLimit,
        CapDrop = ["ALL"],
        SecurityOpt = ["no-new-privileges"],
        // A small init as PID 1 reaps orphans and passes signals on.
        Init = true,
    };

    /// <summary>Makes a path of this machine the container user's, so the container can write there (when the server is root).</summary>
    public void GiveTo(string path)
    {
        if (Native.GetEuid() == 0 && Native.LChown(path, User.Uid, User.Gid) != 0)
        {
            throw new IOException($"Cannot give {path} to the container's user (errno {Marshal.GetLastPInvokeError()}).");
        }
    }
}

/// <summary>A container made for a team: its type (<c>agent</c>, <c>sync</c>), name and what to remember of it.</summary>
public sealed record ContainerMade(string TeamId, string Type, string Name, IReadOnlyDictionary<string, string?> Metadata);

/// <summary>
/// Told when the backend makes or removes a container, so the server can keep its records (seed 003's
/// container_environments), and when the engine did not answer (<see cref="Unreachable"/>: the server marks it down at once).
/// </summary>
public sealed record ContainerEvents(
    Func<ContainerMade, CancellationToken, Task> Made, Func<string, CancellationToken, Task> Removed, Action<Exception>? Unreachable = null);

/// <summary>
/// Covibe's containers in the engine, beyond one agent's lifecycle: the labels that mark them as
/// ours, each team's long-lived workspace container (seed 003's workspace-sync, where its terminals
/// run), health checks run from the server, listing and removal. Every container it makes has the
/// operator's image, user, limits and no capabilities; only the team's workspace is mounted.
/// </summary>
public sealed class ManagedContainers(DockerClient docker, ContainerSettings settings, ContainerEvents? events = null)
{
    public const string ManagedLabel = "covibe.managed";
    public const string TeamLabel = "covibe.team";
    public const string AgentLabel = "covibe.agent";
    public const string OwnerLabel = "covibe.owner";
    public const string TypeLabel = "covibe.type";

    public DockerClient Docker => docker;

    public ContainerSettings Settings => settings;

    /// <summary>Each team's network (<see cref="ContainerSettings.Network"/> <c>team</c>): made, found, removed when idle.</summary>
    public TeamNetworks Networks => _networks ??= new TeamNetworks(this, TimeProvider.System);

    private TeamNetworks? _networks;

    /// <summary>The team's long-lived workspace container (seed 003's workspace-sync): its members' terminals run there.</summary>
    public static string TeamContainerName(string teamId) => $"covibes_sync_{teamId}";

    /// <summary>The team's workspace container, created (or started again) when needed: the same image, user, limits and mounts rules as its agents, with only the workspace mounted.</summary>
    public async Task<string> EnsureTeamContainerAsync(string teamId, string workspace, CancellationToken cancellationToken)
    {
        var name = TeamContainerName(teamId);
        try
        {
            var existing = await docker.Containers.InspectContainerAsync(name, cancellationToken);
            if (existing.State?.Running != true)
            {
                await docker.Containers.StartContainerAsync(name, new ContainerStartParameters(), cancellationToken);
            }
            return name;
        }
        catch (DockerContainerNotFoundException)
        {
            // Made below.
        }
        settings.GiveTo(workspace);
                try
        {
            await docker.Containers.CreateContainerAsync(new CreateContainerParameters
            {
                Name = name,
                Image = settings.Image,
                User = settings.UserSpec,
                WorkingDir = Isolated.Workspace,
                Cmd = ["sleep", "infinity"],
                Env = ["HOME=/workspace"],
                Labels = new Dictionary<string, string> { [ManagedLabel] = "true", [TypeLabel] = "sync", [TeamLabel] = teamId },
                HostConfig = settings.Limited([$"{workspace}:{Isolated.Workspace}:rw"], network: await Networks.ForAsync(teamId, cancellationToken)),
            }, cancellationToken);
        }
        catch (DockerApiException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            throw new ContainerImageMissingException(settings.Image);
        }
        catch (DockerApiException e) when (e.StatusCode == HttpStatusCode.Conflict)
        {
            // Another terminal of the team made it a moment ago.
        }
        try
        {
            await docker.Containers.StartContainerAsync(name, new ContainerStartParameters(), cancellationToken);
        }
        catch (DockerApiException e) when (e.StatusCode == HttpStatusCode.NotModified)
        {
            // Running already.
        }
        await MadeAsync(new ContainerMade(teamId, "sync", name, new Dictionary<string, string?> { ["image"] = settings.Image }), cancellationToken);
        return name;
    }

    /// <summary>A terminal in the team's workspace container (made or started as needed).</summary>
    public async Task<IPty> OpenTerminalAsync(string teamId, string workspace, IReadOnlyList<string> argv, string workingDirectory,
        IReadOnlyDictionary<string, string> environment, int columns, int rows, CancellationToken cancellationToken)
    {
        try
        {
            var container = await EnsureTeamContainerAsync(teamId, workspace, cancellationToken);
            return await ContainerPty.StartAsync(docker, container, settings.UserSpec, argv, workingDirectory, environment, columns, rows, cancellationToken);
        }
        catch (DockerApiException e)
        {
            throw new IOException($"The container engine could not open the terminal: {EngineMessage(e)}");
        }
    }

    /// <summary>Seed 003's health check, from the server's side (Podman runs HEALTHCHECK only under systemd): a command answers in time.</summary>
    public async Task<bool> HealthyAsync(string container, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        try
        {
            var exec = await docker.Exec.CreateContainerExecAsync(container, new ContainerExecCreateParameters { Cmd = ["true"], User = settings.UserSpec, AttachStdout = true, AttachStderr = true }, limit.Token);
            using (var stream = await docker.Exec.StartContainerExecAsync(exec.ID, new ContainerExecStartParameters(), limit.Token))
            {
                await stream.ReadOutputToEndAsync(limit.Token);
            }
            return (await docker.Exec.InspectContainerExecAsync(exec.ID, limit.Token)).ExitCode == 0;
        }
        catch (Exception e) when (e is DockerApiException or IOException or HttpRequestException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>The containers Covibe made (labelled <c>covibe.managed</c>), running or not.</summary>
    public Task<IList<ContainerListResponse>> ListManagedAsync(CancellationToken cancellationToken) =>
        ReachAsync(() => ListAsync(docker, new ContainersListParameters
        {
            All = true,
            Filters = new Dictionary<string, IDictionary<string, bool>> { ["label"] = new Dictionary<string, bool> { [$"{ManagedLabel}=true"] = true } },
        }, cancellationToken), cancellationToken);

    /// <summary>The engine's containers, listed again when a container removed meanwhile failed the list (Podman 4.3 fails all of it then).</summary>
    public static async Task<IList<ContainerListResponse>> ListAsync(DockerClient docker, ContainersListParameters parameters, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await docker.Containers.ListContainersAsync(parameters, cancellationToken);
            }
            catch (DockerApiException e) when (attempt < 3 && RemovedWhileListed(e))
            {
                // Listed again.
            }
        }
    }

    /// <summary>Podman's answer to a list that met a container being removed (500, "container not known").</summary>
    public static bool RemovedWhileListed(DockerApiException e) =>
        e.StatusCode == System.Net.HttpStatusCode.InternalServerError && e.ResponseBody?.Contains("container not known", StringComparison.Ordinal) == true;

    /// <summary>Runs a short shell command in the container as its own user and waits for it.</summary>
    public async Task ExecAsync(string container, string script, CancellationToken cancellationToken)
    {
        try
        {
            await ReachAsync(async () =>
            {
                var exec = await docker.Exec.CreateContainerExecAsync(container, new ContainerExecCreateParameters
                {
                    Cmd = ["sh", "-c", script],
                    User = settings.UserSpec,
                    AttachStdout = true,
                    AttachStderr = true,
                }, cancellationToken);
                using var stream = await docker.Exec.StartContainerExecAsync(exec.ID, new ContainerExecStartParameters(), cancellationToken);
                await stream.ReadOutputToEndAsync(cancellationToken);
            }, cancellationToken);
        }
        catch (DockerApiException)
        {
            // The container has stopped: nothing left to signal.
        }
    }

    /// <summary>Stops and removes a container (an orphan, or one whose work is done), and says so.</summary>
    public async Task RemoveAsync(string container, CancellationToken cancellationToken)
    {
        try
        {
            await ReachAsync(() => docker.Containers.RemoveContainerAsync(container, new ContainerRemoveParameters { Force = true }, cancellationToken), cancellationToken);
        }
        catch (DockerApiException)
        {
            // Gone already.
        }
        if (events is not null)
        {
            await events.Removed(container, cancellationToken);
        }
    }

    /// <summary>Tells the server a container was made for a team.</summary>
    public Task MadeAsync(ContainerMade made, CancellationToken cancellationToken) => events?.Made(made, cancellationToken) ?? Task.CompletedTask;

    /// <summary>
    /// Runs <paramref name="call"/> against the engine: if the engine does not answer (its socket refused or closed the
    /// connection, or the call timed out, as opposed to an answer that refused the request), the server is told (it marks
    /// the engine down at once) and <see cref="PlaceUnreachableException"/> is thrown, nothing having started there.
    /// </summary>
    public Task ReachAsync(Func<Task> call, CancellationToken cancellationToken) =>
        ReachAsync(async () =>
        {
            await call();
            return true;
        }, cancellationToken);

    /// <inheritdoc cref="ReachAsync(Func{Task}, CancellationToken)"/>
    public async Task<T> ReachAsync<T>(Func<Task<T>> call, CancellationToken cancellationToken)
    {
        try
        {
            return await call();
        }
        catch (Exception e) when (e is HttpRequestException or TimeoutException
            || (e is IOException and not PlaceUnreachableException && e.GetBaseException() is System.Net.Sockets.SocketException)
            || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            events?.Unreachable?.Invoke(e);
            throw new PlaceUnreachableException($"The container engine does not answer ({e.GetBaseException().Message}).", e);
        }
    }

    public static string EngineMessage(DockerApiException e) =>
        e.ResponseBody is { Length: > 0 } body && body.Contains("\"message\"", StringComparison.Ordinal)
            ? System.Text.Json.JsonDocument.Parse(body).RootElement.GetProperty("message").GetString() ?? e.Message
            : e.Message;
}

/// <summary>The configured image is not in the engine: <c>covibe image build</c> makes the default one.</summary>
public sealed class ContainerImageMissingException(string image)
    : IOException($"The container image '{image}' is not in the container engine. Build it with `covibe image build` (or set AGENT_IMAGE to an image the engine has).")
{
    public string Image { get; } = image;
}
