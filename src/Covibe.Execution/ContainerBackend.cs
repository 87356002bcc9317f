using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using Docker.DotNet;
using Docker.DotNet.Models;

namespace Covibe.Execution;

/// <summary>Limits and placement of the containers Covibe creates: seed 003's defaults.</summary>
public sealed record ContainerLimits(long MemoryBytes, long MemoryReservationBytes, double Cpus, double CpuReservation, long PidsLimit = 1024);

/// <summary>What every container is made from: only the operator chooses these, never a request.</summary>
public sealed record ContainerSettings(string Image, string Network, ContainerLimits AgentLimits, (uint Uid, uint Gid) User);

/// <summary>A container made for a team: its type (<c>agent</c>, <c>sync</c>), name and what to remember of it.</summary>
public sealed record ContainerMade(string TeamId, string Type, string Name, IReadOnlyDictionary<string, string?> Metadata);

/// <summary>Told when the backend makes or removes a container, so the server can keep its records (seed 003's container_environments).</summary>
public sealed record ContainerEvents(Func<ContainerMade, CancellationToken, Task> Made, Func<string, CancellationToken, Task> Removed);

/// <summary>
/// Seed 003's agent containers, through the Docker Engine API (Podman serves it too): one
/// container per agent, named <c>covibes_agent_&lt;teamId&gt;_&lt;agentId&gt;</c> and labelled with its
/// team, agent and owner, with the team's workspace at <c>/workspace</c> and the agent's runtime
/// directory at <c>/covibe</c> (bind mounts from this machine: the log stays the truth and is read
/// here, as for local agents). It runs under the same wrapper, as an unprivileged user with no
/// capabilities, under memory, CPU and process limits. The engine keeps it running when the server
/// stops; a restarted server finds it again by name.
/// </summary>
public sealed class ContainerBackend(DockerClient docker, ContainerSettings settings, string runtimeRoot, ContainerEvents? events = null) : IExecutionBackend
{
    public const string BackendName = "container";
    public const string ManagedLabel = "covibe.managed";
    public const string TeamLabel = "covibe.team";
    public const string AgentLabel = "covibe.agent";
    public const string OwnerLabel = "covibe.owner";
    public const string TypeLabel = "covibe.type";

    public string Name => BackendName;

    public ContainerSettings Settings => settings;

    public static string AgentContainerName(string teamId, string agentId) => $"covibes_agent_{teamId}_{agentId}";

    /// <summary>The team's long-lived workspace container (seed 003's workspace-sync): its members' terminals run there.</summary>
    public static string TeamContainerName(string teamId) => $"covibes_sync_{teamId}";

    /// <summary>The user containers run as, as the engine wants it.</summary>
    public string User => $"{Str(settings.User.Uid)}:{Str(settings.User.Gid)}";

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
        GiveToContainer(workspace);
        var limits = settings.AgentLimits;
        try
        {
            await docker.Containers.CreateContainerAsync(new CreateContainerParameters
            {
                Name = name,
                Image = settings.Image,
                User = User,
                WorkingDir = HostSandbox.Workspace,
                Cmd = ["sleep", "infinity"],
                Env = ["HOME=/workspace"],
                Labels = new Dictionary<string, string> { [ManagedLabel] = "true", [TypeLabel] = "sync", [TeamLabel] = teamId },
                HostConfig = Limited(limits, [$"{workspace}:{HostSandbox.Workspace}:rw"]),
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
        if (events is not null)
        {
            await events.Made(new ContainerMade(teamId, "sync", name, new Dictionary<string, string?> { ["image"] = settings.Image }), cancellationToken);
        }
        return name;
    }

    /// <summary>A terminal in the team's workspace container (made or started as needed).</summary>
    public async Task<IPty> OpenTerminalAsync(string teamId, string workspace, IReadOnlyList<string> argv, string workingDirectory,
        IReadOnlyDictionary<string, string> environment, int columns, int rows, CancellationToken cancellationToken)
    {
        try
        {
            var container = await EnsureTeamContainerAsync(teamId, workspace, cancellationToken);
            return await ContainerPty.StartAsync(docker, container, User, argv, workingDirectory, environment, columns, rows, cancellationToken);
        }
        catch (DockerApiException e)
        {
            throw new IOException($"The container engine could not open the terminal: {EngineMessage(e)}");
        }
    }

    /// <summary>Seed 003's limits, no capabilities, no new privileges, and only the given mounts.</summary>
    private HostConfig Limited(ContainerLimits limits, IList<string> binds) => new()
    {
        Binds = binds,
        NetworkMode = settings.Network,
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

    public async Task<AgentProcess> StartAsync(AgentLaunch launch, CancellationToken cancellationToken)
    {
        var workspace = launch.Workspace ?? throw new ArgumentException("A container agent needs its team's workspace.");
        var teamId = launch.TeamId ?? throw new ArgumentException("A container agent needs its team.");
        var runtime = RuntimeFiles.Prepare(runtimeRoot, launch);
        // The container's user writes there; nothing else of the server's is mounted.
        foreach (var path in Directory.EnumerateFileSystemEntries(runtime).Prepend(runtime).Append(workspace))
        {
            GiveToContainer(path);
        }

        var name = AgentContainerName(teamId, launch.AgentId);
        var limits = settings.AgentLimits;
        var create = new CreateContainerParameters
        {
            Name = name,
            Image = settings.Image,
            User = User,
            WorkingDir = HostSandbox.Workspace,
            Cmd = ["sh", "-c", AgentWrapper.Script, AgentWrapper.ProgramName, HostSandbox.Runtime, $"{HostSandbox.Workspace}/{launch.WorkingDirectory}",
                launch.RepositoryUrl ?? "", launch.Branch ?? "", .. launch.Argv],
            Env = [.. launch.Environment.Select(e => $"{e.Key}={e.Value}")],
            Labels = new Dictionary<string, string>
            {
                [ManagedLabel] = "true",
                [TypeLabel] = "agent",
                [TeamLabel] = teamId,
                [AgentLabel] = launch.AgentId,
                [OwnerLabel] = launch.OwnerId ?? "",
            },
            HostConfig = Limited(limits, [$"{runtime}:{HostSandbox.Runtime}:rw", $"{workspace}:{HostSandbox.Workspace}:rw"]),
        };
        try
        {
            await docker.Containers.CreateContainerAsync(create, cancellationToken);
        }
        catch (DockerApiException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            throw new ContainerImageMissingException(settings.Image);
        }
        catch (DockerApiException e)
        {
            throw new IOException($"The container engine refused to create the agent's container: {EngineMessage(e)}");
        }
        try
        {
            await docker.Containers.StartContainerAsync(name, new ContainerStartParameters(), cancellationToken);
        }
        catch (DockerApiException e)
        {
            // Nothing half-made is left behind.
            await RemoveAsync(name, CancellationToken.None);
            throw new IOException($"The container engine could not start the agent's container: {EngineMessage(e)}");
        }
        if (events is not null)
        {
            await events.Made(new ContainerMade(teamId, "agent", name, new Dictionary<string, string?>
            {
                ["agentId"] = launch.AgentId,
                ["ownerId"] = launch.OwnerId,
                ["image"] = settings.Image,
            }), cancellationToken);
        }
        return new AgentProcess(BackendName, runtime, 0, 0, name);
    }

    public async Task<AgentProcessState> ProbeAsync(AgentProcess process, CancellationToken cancellationToken)
    {
        var started = File.Exists(Path.Combine(process.RuntimeDirectory, "running"))
            ? File.GetLastWriteTimeUtc(Path.Combine(process.RuntimeDirectory, "running")) : (DateTime?)null;
        ContainerInspectResponse container;
        try
        {
            container = await docker.Containers.InspectContainerAsync(process.Target!, cancellationToken);
        }
        catch (DockerContainerNotFoundException)
        {
            return ExitCode(process) is { } code ? new AgentProcessState(AgentRunState.Exited, code, started) : new AgentProcessState(AgentRunState.Gone);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or DockerApiException)
        {
            return new AgentProcessState(started is null ? AgentRunState.Starting : AgentRunState.Running, StartedAt: started); // engine away: do not guess
        }
        if (container.State?.Running == true)
        {
            return new AgentProcessState(started is null ? AgentRunState.Starting : AgentRunState.Running, StartedAt: started);
        }
        // It has stopped: what the wrapper recorded, else the container's own exit code (killed before the wrapper could write it).
        var exit = ExitCode(process) ?? (int)(container.State?.ExitCode ?? 137);
        await RemoveAsync(process.Target!, cancellationToken);
        return new AgentProcessState(AgentRunState.Exited, exit, started);
    }

    public Task<int> ReadOutputAsync(AgentProcess process, long offset, Memory<byte> buffer, CancellationToken cancellationToken) =>
        RuntimeFiles.ReadAsync(Path.Combine(process.RuntimeDirectory, "output.log"), offset, buffer, cancellationToken);

    public Task WriteInputAsync(AgentProcess process, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (ExitCode(process) is not null)
        {
            throw new AgentNotRunningException("The agent has exited; it reads no more input.");
        }
        // The FIFO is on this machine, bind-mounted into the container: the same pipe.
        RuntimeFiles.WriteInput(process.RuntimeDirectory, data.Span);
        return Task.CompletedTask;
    }

    public async Task SignalAsync(AgentProcess process, AgentSignal signal, CancellationToken cancellationToken)
    {
        switch (signal)
        {
            case AgentSignal.Interrupt:
                // Like Ctrl-C: to the agent (the wrapper's children), inside the container.
                await ExecAsync(process.Target!, "w=$(cat /covibe/wrapper.pid) && kill -INT $(cat /proc/$w/task/*/children) 2>/dev/null; exit 0", cancellationToken);
                break;
            case AgentSignal.Terminate:
                await ExecAsync(process.Target!, "kill -TERM -1 2>/dev/null; exit 0", cancellationToken);
                break;
            case AgentSignal.Kill:
                try
                {
                    await docker.Containers.KillContainerAsync(process.Target!, new ContainerKillParameters { Signal = "KILL" }, cancellationToken);
                }
                catch (DockerApiException)
                {
                    // Gone or stopped already.
                }
                break;
        }
    }

    public async Task CloseInputAsync(AgentProcess process, CancellationToken cancellationToken)
    {
        if (ExitCode(process) is not null)
        {
            throw new AgentNotRunningException("The agent has exited; its input is closed already.");
        }
        await ExecAsync(process.Target!, "kill \"$(cat /covibe/holder)\" 2>/dev/null; exit 0", cancellationToken);
    }

    /// <summary>Seed 003's health check, from the server's side (Podman runs HEALTHCHECK only under systemd): a command answers in time.</summary>
    public async Task<bool> HealthyAsync(string container, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        try
        {
            var exec = await docker.Exec.CreateContainerExecAsync(container, new ContainerExecCreateParameters { Cmd = ["true"], User = User, AttachStdout = true, AttachStderr = true }, limit.Token);
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
    public async Task<IList<ContainerListResponse>> ListManagedAsync(CancellationToken cancellationToken) =>
        await docker.Containers.ListContainersAsync(new ContainersListParameters
        {
            All = true,
            Filters = new Dictionary<string, IDictionary<string, bool>> { ["label"] = new Dictionary<string, bool> { [$"{ManagedLabel}=true"] = true } },
        }, cancellationToken);

    /// <summary>Stops and removes a container (an orphan, or one whose work is done).</summary>
    public Task RemoveContainerAsync(string container, CancellationToken cancellationToken) => RemoveAsync(container, cancellationToken);

    /// <summary>Runs a short shell command in the container as its own user and waits for it.</summary>
    private async Task ExecAsync(string container, string script, CancellationToken cancellationToken)
    {
        try
        {
            var exec = await docker.Exec.CreateContainerExecAsync(container, new ContainerExecCreateParameters
            {
                Cmd = ["sh", "-c", script],
                User = User,
                AttachStdout = true,
                AttachStderr = true,
            }, cancellationToken);
            using var stream = await docker.Exec.StartContainerExecAsync(exec.ID, new ContainerExecStartParameters(), cancellationToken);
            await stream.ReadOutputToEndAsync(cancellationToken);
        }
        catch (DockerApiException)
        {
            // The container has stopped: nothing left to signal.
        }
    }

    private async Task RemoveAsync(string container, CancellationToken cancellationToken)
    {
        try
        {
            await docker.Containers.RemoveContainerAsync(container, new ContainerRemoveParameters { Force = true }, cancellationToken);
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

    private void GiveToContainer(string path)
    {
        if (Native.GetEuid() == 0 && Native.LChown(path, settings.User.Uid, settings.User.Gid) != 0)
        {
            throw new IOException($"Cannot give {path} to the container's user (errno {Marshal.GetLastPInvokeError()}).");
        }
    }

    private static int? ExitCode(AgentProcess process) => RuntimeFiles.ExitCode(process.RuntimeDirectory);

    internal static string EngineMessage(DockerApiException e) =>
        e.ResponseBody is { Length: > 0 } body && body.Contains("\"message\"", StringComparison.Ordinal)
            ? System.Text.Json.JsonDocument.Parse(body).RootElement.GetProperty("message").GetString() ?? e.Message
            : e.Message;

    private static string Str(uint value) => value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>The configured image is not in the engine: <c>covibe image build</c> makes the default one.</summary>
public sealed class ContainerImageMissingException(string image)
    : IOException($"The container image '{image}' is not in the container engine. Build it with `covibe image build` (or set AGENT_IMAGE to an image the engine has).")
{
    public string Image { get; } = image;
}
