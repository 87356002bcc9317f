using System.Net;
using Docker.DotNet;
using Docker.DotNet.Models;

using Covibe.Execution.Local;

namespace Covibe.Execution.Containers;

/// <summary>
/// Seed 003's agent containers, through the Docker Engine API (Podman serves it too): one
/// container per agent, named <c>covibes_agent_&lt;teamId&gt;_&lt;agentId&gt;</c> and labelled with its
/// team, agent and owner, with the team's workspace at <c>/workspace</c> and the agent's runtime
/// directory at <c>/covibe</c> (bind mounts from this machine: the log stays the truth and is read
/// here, as for local agents). It runs under the same wrapper, as an unprivileged user with no
/// capabilities, under memory, CPU and process limits. The engine keeps it running when the server
/// stops; a restarted server finds it again by name.
/// </summary>
public sealed class ContainerBackend(ManagedContainers containers, string runtimeRoot) : IExecutionBackend
{
    public const string BackendName = "container";

    public string Name => BackendName;

    public static string AgentContainerName(string teamId, string agentId) => $"covibes_agent_{teamId}_{agentId}";

    /// <summary>Starts the container; <see cref="PlaceUnreachableException"/> when the engine does not answer (its runtime files undone).</summary>
    public async Task<AgentProcess> StartAsync(AgentLaunch launch, CancellationToken cancellationToken)
    {
        try
        {
            return await containers.ReachAsync(() => StartContainerAsync(launch, cancellationToken), cancellationToken);
        }
        catch (PlaceUnreachableException)
        {
            RuntimeFiles.Unprepare(runtimeRoot, launch);
            throw;
        }
    }

    private async Task<AgentProcess> StartContainerAsync(AgentLaunch launch, CancellationToken cancellationToken)
    {
        var workspace = launch.Workspace ?? throw new ArgumentException("A container agent needs its team's workspace.");
        var teamId = launch.TeamId ?? throw new ArgumentException("A container agent needs its team.");
        var runtime = RuntimeFiles.Prepare(runtimeRoot, launch);
        // The container's user writes there; nothing else of the server's is mounted.
        foreach (var path in Directory.EnumerateFileSystemEntries(runtime).Prepend(runtime).Append(workspace))
        {
            containers.Settings.GiveTo(path);
        }

        var service = launch.Service;
        var type = service?.Kind ?? "agent";
        var name = service?.Name ?? AgentContainerName(teamId, launch.AgentId);
        var image = service?.Image ?? containers.Settings.Image;
        // An image of its own brings its files; otherwise they are mounted at /workspace.
        var ownImage = service?.Image is not null;
        var workingDirectory = ownImage ? service!.ImageWorkingDirectory ?? "/" : $"{Isolated.Workspace}/{launch.WorkingDirectory}";
        List<string> binds = ownImage
            ? [$"{runtime}:{Isolated.Runtime}:rw"]
            : [$"{runtime}:{Isolated.Runtime}:rw", $"{workspace}:{Isolated.Workspace}:rw", .. launch.Tree is { } tree ? [$"{tree.Source}:{tree.Source}:ro"] : Array.Empty<string>()];
        var create = new CreateContainerParameters
        {
            Name = name,
            Image = image,
            User = containers.Settings.UserSpec,
            WorkingDir = ownImage ? null! : Isolated.Workspace,
            // The repository's image may have an entrypoint of its own: the wrapper runs first, then the image's command.
            Entrypoint = ownImage ? ["sh"] : null!,
            Cmd = [.. ownImage ? Array.Empty<string>() : ["sh"], "-c", AgentWrapper.Script, AgentWrapper.ProgramName, Isolated.Runtime, workingDirectory,
                launch.RepositoryUrl ?? "", launch.Branch ?? "", .. launch.Argv],
            Env = [.. WorkTree.With(launch.Environment, launch.Tree).Select(e => $"{e.Key}={e.Value}")],
            Labels = new Dictionary<string, string>
            {
                [ManagedContainers.ManagedLabel] = "true",
                [ManagedContainers.TypeLabel] = type,
                [ManagedContainers.TeamLabel] = teamId,
                [ManagedContainers.AgentLabel] = launch.AgentId,
                [ManagedContainers.OwnerLabel] = launch.OwnerId ?? "",
            },
            HostConfig = containers.Settings.Limited(binds, service is null ? null : containers.Settings.ServiceLimits, await containers.Networks.ForAsync(teamId, cancellationToken)),
        };
        if (service is not null)
        {
            // Reachable from this machine's loopback only: the server's proxy is the way in.
            var port = $"{(service.ContainerPort ?? service.Port).ToString(System.Globalization.CultureInfo.InvariantCulture)}/tcp";
            create.ExposedPorts = new Dictionary<string, EmptyStruct> { [port] = default };
            create.HostConfig.PortBindings = new Dictionary<string, IList<PortBinding>>
            {
                [port] = [new PortBinding { HostIP = "127.0.0.1", HostPort = service.Port.ToString(System.Globalization.CultureInfo.InvariantCulture) }],
            };
        }
        try
        {
            await containers.Docker.Containers.CreateContainerAsync(create, cancellationToken);
        }
        catch (DockerApiException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            throw new ContainerImageMissingException(image);
        }
        catch (DockerApiException e)
        {
            throw new IOException($"The container engine refused to create the {type}'s container: {ManagedContainers.EngineMessage(e)}");
        }
        try
        {
            await containers.Docker.Containers.StartContainerAsync(name, new ContainerStartParameters(), cancellationToken);
        }
        catch (DockerApiException e)
        {
            // Nothing half-made is left behind.
            await containers.RemoveAsync(name, CancellationToken.None);
            throw new IOException($"The container engine could not start the {type}'s container: {ManagedContainers.EngineMessage(e)}");
        }
        await containers.MadeAsync(new ContainerMade(teamId, type, name, new Dictionary<string, string?>
        {
            [service?.IdKey ?? "agentId"] = launch.AgentId,
            ["ownerId"] = launch.OwnerId,
            ["image"] = image,
            ["port"] = service?.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
        }), cancellationToken);
        return new AgentProcess(BackendName, runtime, 0, 0, name);
    }

    public async Task<AgentProcessState> ProbeAsync(AgentProcess process, CancellationToken cancellationToken)
    {
        var started = File.Exists(Path.Combine(process.RuntimeDirectory, "running"))
            ? File.GetLastWriteTimeUtc(Path.Combine(process.RuntimeDirectory, "running")) : (DateTime?)null;
        ContainerInspectResponse container;
        try
        {
            container = await containers.Docker.Containers.InspectContainerAsync(process.Target!, cancellationToken);
        }
        catch (DockerContainerNotFoundException)
        {
            return ExitCode(process) is { } code ? new AgentProcessState(AgentRunState.Exited, code, started) : new AgentProcessState(AgentRunState.Gone);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or DockerApiException)
        {
            return new AgentProcessState(started is null ? AgentRunState.Starting : AgentRunState.Running, StartedAt: started); // engine away: do not guess
        }
        // Running, or on its way out (being stopped or removed: its exit code is not known yet).
        if (container.State?.Running == true || container.State?.Status is "stopping" or "removing")
        {
            return new AgentProcessState(started is null ? AgentRunState.Starting : AgentRunState.Running, StartedAt: started);
        }
        // It has stopped: what the wrapper recorded, else the container's own exit code (killed before the wrapper could write it).
        var exit = ExitCode(process) ?? (int)(container.State?.ExitCode ?? 137);
        await containers.RemoveAsync(process.Target!, cancellationToken);
        return new AgentProcessState(AgentRunState.Exited, exit, started);
    }

    public Task<int> ReadOutputAsync(AgentProcess process, long offset, Memory<byte> buffer, CancellationToken cancellationToken) =>
        RuntimeFiles.ReadAsync(LocalLogPath(process), offset, buffer, cancellationToken);

    public string LocalLogPath(AgentProcess process) => Path.Combine(process.RuntimeDirectory, "output.log");

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
                await containers.ExecAsync(process.Target!, "w=$(cat /covibe/wrapper.pid) && kill -INT $(cat /proc/$w/task/*/children) 2>/dev/null; exit 0", cancellationToken);
                break;
            case AgentSignal.Terminate:
                await containers.ExecAsync(process.Target!, "kill -TERM -1 2>/dev/null; exit 0", cancellationToken);
                break;
            case AgentSignal.Kill:
                try
                {
                    await containers.ReachAsync(() => containers.Docker.Containers.KillContainerAsync(process.Target!, new ContainerKillParameters { Signal = "KILL" }, cancellationToken), cancellationToken);
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
        await containers.ExecAsync(process.Target!, "kill \"$(cat /covibe/holder)\" 2>/dev/null; exit 0", cancellationToken);
    }

    private static int? ExitCode(AgentProcess process) => RuntimeFiles.ExitCode(process.RuntimeDirectory);

    /// <summary>
    /// A shell in the team's workspace container (started if it is not running), through a TTY exec: the workspace at
    /// <see cref="Isolated.Workspace"/> and home there.
    /// </summary>
    public async Task<IPty> OpenTerminalAsync(ShellLaunch launch, CancellationToken cancellationToken)
    {
        var shell = launch.Shell;
        var workspace = launch.Workspace ?? throw new ArgumentException("A container's shell needs its team's workspace.");
        var teamId = launch.TeamId ?? throw new ArgumentException("A container's shell needs its team.");
        var program = shell.Environment.TryGetValue("SHELL", out var named) ? named : shell.Program;
        return await containers.ReachAsync(() => containers.OpenTerminalAsync(teamId, workspace, [program], Isolated.InWorkspace(workspace, shell.WorkingDirectory),
            Isolated.AsUser(shell.Environment), shell.Columns, shell.Rows, cancellationToken), cancellationToken);
    }

}

