using Docker.DotNet;
using Docker.DotNet.Models;

namespace Covibe.Execution.Containers;

/// <summary>
/// Jobs inside a long-lived container that already runs (seed 002's boxes): each job is a process started in it
/// through the Engine API (an exec, detached), under the same wrapper as every other backend and in a session of
/// its own. Its runtime directory (FIFO, log, exit code) is on this machine under <see cref="ContainerExec.RuntimeRoot"/>,
/// which the container sees at <see cref="RuntimeMount"/>, so the log is read here and stays the truth. The exec's process is found again after a restart by its PID and start
/// time on this machine (the engine is local), like a local agent.
/// </summary>
public sealed class ContainerExecBackend(Func<ManagedContainers> engine) : IExecutionBackend
{
    /// <summary>The name stored with its jobs (boxes were its first and only users when it was chosen).</summary>
    public const string BackendName = "box";

    /// <summary>Where the container sees its jobs' runtime directories.</summary>
    public const string RuntimeMount = "/covibe-runs";

    public string Name => BackendName;

    /// <summary>Starts the job in the container; <see cref="PlaceUnreachableException"/> when the engine does not answer (its runtime files undone).</summary>
    public async Task<AgentProcess> StartAsync(AgentLaunch launch, CancellationToken cancellationToken)
    {
        if (launch.Tree is not null)
        {
            throw new ArgumentException("A work tree borrows a repository of the server's machine, which this place cannot see.", nameof(launch));
        }
        var into = launch.Exec ?? throw new ArgumentException("A job in a running container needs the container.");
        try
        {
            return await engine().ReachAsync(() => StartExecAsync(launch, into, cancellationToken), cancellationToken);
        }
        catch (PlaceUnreachableException)
        {
            RuntimeFiles.Unprepare(into.RuntimeRoot, launch);
            throw;
        }
    }

    private async Task<AgentProcess> StartExecAsync(AgentLaunch launch, ContainerExec into, CancellationToken cancellationToken)
    {
        var runtime = RuntimeFiles.Prepare(into.RuntimeRoot, launch);
        foreach (var path in Directory.EnumerateFileSystemEntries(runtime).Prepend(runtime))
        {
            UntrustedFiles.GiveTo(path, into.Uid, into.Gid);
        }
        var inside = $"{RuntimeMount}/{launch.AgentId}";
        string id;
        try
        {
            var exec = await engine().Docker.Exec.CreateContainerExecAsync(into.Container, new ContainerExecCreateParameters
            {
                // Not under setsid: it would fork where the exec is a session leader already (Podman), and lose the PID the
                // engine reports. Signals go to the wrapper's whole tree instead (see SignalAsync).
                Cmd = ["sh", "-c", AgentWrapper.Script, AgentWrapper.ProgramName, inside, into.WorkingDirectory, "", "", .. launch.Argv],
                User = into.User,
                WorkingDir = into.WorkingDirectory,
                // The engine wants a stream attached; the wrapper sends everything to its log, so nothing comes through it.
                AttachStderr = true,
                Env = [.. launch.Environment.Select(e => $"{e.Key}={e.Value}")],
            }, cancellationToken);
            id = exec.ID;
            // The connection is closed at once and the process runs on (a detached start is answered without the
            // hijacked stream the client library expects).
            using var attached = await engine().Docker.Exec.StartContainerExecAsync(id, new ContainerExecStartParameters(), cancellationToken);
        }
        catch (DockerApiException e)
        {
            throw new IOException($"The container could not start the job: {ManagedContainers.EngineMessage(e)}");
        }
        // The engine names the process on this machine once it runs: its PID and start time identify it from then on.
        var pid = 0;
        for (var attempt = 0; attempt < 50 && pid == 0; attempt++)
        {
            var inspect = await engine().Docker.Exec.InspectContainerExecAsync(id, cancellationToken);
            pid = (int)inspect.Pid;
            if (pid == 0)
            {
                await Task.Delay(20, cancellationToken);
            }
        }
        // The target names the container and the agent's user, so signals go there as that user (never as root).
        return new AgentProcess(BackendName, runtime, pid, pid > 0 ? ProcFs.StartTime(pid) ?? 0 : 0, $"{into.Container}/{into.Uid}:{into.Gid}");
    }

    public async Task<AgentProcessState> ProbeAsync(AgentProcess process, CancellationToken cancellationToken)
    {
        var runningFile = Path.Combine(process.RuntimeDirectory, "running");
        DateTime? started = File.Exists(runningFile) ? File.GetLastWriteTimeUtc(runningFile) : null;
        if (RuntimeFiles.ExitCode(process.RuntimeDirectory) is { } code)
        {
            return new AgentProcessState(AgentRunState.Exited, code, started);
        }
        var alive = process.Pid > 0
            ? ProcFs.StartTime(process.Pid) == process.StartTime
            : await ContainerRunningAsync(ContainerOf(process), cancellationToken);
        if (alive)
        {
            return new AgentProcessState(started is null ? AgentRunState.Starting : AgentRunState.Running, StartedAt: started);
        }
        return RuntimeFiles.ExitCode(process.RuntimeDirectory) is { } late
            ? new AgentProcessState(AgentRunState.Exited, late, started)
            : new AgentProcessState(AgentRunState.Gone);
    }

    public Task<int> ReadOutputAsync(AgentProcess process, long offset, Memory<byte> buffer, CancellationToken cancellationToken) =>
        RuntimeFiles.ReadAsync(LocalLogPath(process), offset, buffer, cancellationToken);

    public string LocalLogPath(AgentProcess process) => Path.Combine(process.RuntimeDirectory, "output.log");

    public Task WriteInputAsync(AgentProcess process, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (RuntimeFiles.ExitCode(process.RuntimeDirectory) is not null)
        {
            throw new AgentNotRunningException("The agent has exited; it reads no more input.");
        }
        RuntimeFiles.WriteInput(process.RuntimeDirectory, data.Span);
        return Task.CompletedTask;
    }

    public Task SignalAsync(AgentProcess process, AgentSignal signal, CancellationToken cancellationToken) => InsideAsync(process, signal switch
    {
        // Like Ctrl-C: to the agent, the wrapper's children.
        AgentSignal.Interrupt => "for c in $(cat /proc/$w/task/$w/children 2>/dev/null); do kill -INT \"$c\" 2>/dev/null; done",
        AgentSignal.Terminate => Tree + "kill -TERM $(tree \"$w\") \"$w\" 2>/dev/null; kill -TERM -- \"-$w\" 2>/dev/null",
        _ => Tree + "kill -KILL $(tree \"$w\") \"$w\" 2>/dev/null; kill -KILL -- \"-$w\" 2>/dev/null",
    }, cancellationToken);

    /// <summary>A shell function printing every descendant of a PID (deepest first), from /proc.</summary>
    private const string Tree = "tree() { for c in $(cat /proc/$1/task/*/children 2>/dev/null); do tree \"$c\"; echo \"$c\"; done; }; ";

    public async Task CloseInputAsync(AgentProcess process, CancellationToken cancellationToken)
    {
        if (RuntimeFiles.ExitCode(process.RuntimeDirectory) is not null)
        {
            throw new AgentNotRunningException("The agent has exited; its input is closed already.");
        }
        await InsideAsync(process, "kill \"$(cat \"$rt/holder\")\" 2>/dev/null", cancellationToken);
    }

    /// <summary>Runs a short script in the container as root-less as the agent (its wrapper's PID is <c>$w</c>, its runtime directory <c>$rt</c>).</summary>
    private async Task InsideAsync(AgentProcess process, string script, CancellationToken cancellationToken)
    {
        var agentId = Path.GetFileName(process.RuntimeDirectory);
        var rt = $"{RuntimeMount}/{agentId}";
        try
        {
            var exec = await engine().Docker.Exec.CreateContainerExecAsync(ContainerOf(process), new ContainerExecCreateParameters
            {
                Cmd = ["sh", "-c", $"rt=\"$1\"; w=$(cat \"$rt/wrapper.pid\") || exit 0; {script}; exit 0", "covibe-signal", rt],
                User = process.Target![(process.Target!.LastIndexOf('/') + 1)..],
                AttachStdout = true,
                AttachStderr = true,
            }, cancellationToken);
            using var stream = await engine().Docker.Exec.StartContainerExecAsync(exec.ID, new ContainerExecStartParameters(), cancellationToken);
            await stream.ReadOutputToEndAsync(cancellationToken);
        }
        catch (DockerApiException)
        {
            // The container is stopped or gone: nothing left to signal.
        }
    }

    private async Task<bool> ContainerRunningAsync(string container, CancellationToken cancellationToken)
    {
        try
        {
            return (await engine().Docker.Containers.InspectContainerAsync(container, cancellationToken)).State?.Running == true;
        }
        catch (DockerContainerNotFoundException)
        {
            return false;
        }
        catch (Exception e) when (e is HttpRequestException or IOException or DockerApiException)
        {
            return true; // the engine is away: do not guess
        }
    }

    /// <summary>The container, from the target <c>container/uid:gid</c>.</summary>
    public static string ContainerOf(AgentProcess process) => process.Target![..process.Target!.LastIndexOf('/')];

    /// <summary>
    /// A login shell in the running container (a box), as its user, in the shell's working directory there: bash if the
    /// image has it, else sh; the image's own HOME and SHELL, not this machine's.
    /// </summary>
    public async Task<IPty> OpenTerminalAsync(ShellLaunch launch, CancellationToken cancellationToken)
    {
        var exec = launch.Exec ?? throw new ArgumentException("A shell in a running container needs the container.");
        var shell = launch.Shell;
        var environment = new Dictionary<string, string>(shell.Environment);
        environment.Remove("HOME");
        environment.Remove("SHELL");
        string[] argv = ["sh", "-c", "if command -v bash >/dev/null; then exec bash -l; else exec sh -l; fi"];
        var containers = engine();
        return await containers.ReachAsync(
            () => ContainerPty.StartAsync(containers.Docker, exec.Container, exec.User, argv, shell.WorkingDirectory, environment, shell.Columns, shell.Rows, cancellationToken),
            cancellationToken);
    }

}
