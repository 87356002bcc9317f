using System.Diagnostics;
using System.Globalization;

namespace Covibe.Execution.Local;

/// <summary>
/// Runs agents as processes on the server's machine, each in its own session (<c>setsid</c>) so
/// that stopping or killing the server leaves them running. With a <see cref="HostSandbox"/>
/// (backend <c>sandbox</c>, the default) each agent runs in bubblewrap and sees only its team's
/// workspace (at <c>/workspace</c>) and its own runtime directory (at <c>/covibe</c>); without one
/// (backend <c>local</c>, an operator's explicit choice) it runs with the server's privileges.
/// </summary>
/// <remarks>With <see cref="TeamCgroups"/>, each team's sandboxed programs share their team's limits.</remarks>
public sealed class LocalBackend(string runtimeRoot, HostSandbox? sandbox = null, TeamCgroups? cgroups = null) : IExecutionBackend
{
    public const string BackendName = "local";
    public const string SandboxedName = "sandbox";

    public string Name => sandbox is null ? BackendName : SandboxedName;

    public Task<AgentProcess> StartAsync(AgentLaunch launch, CancellationToken cancellationToken)
    {
        var workspace = launch.Workspace ?? throw new ArgumentException("A local agent needs its team's workspace.");
        var runtime = RuntimeFiles.Prepare(runtimeRoot, launch);
        Directory.CreateDirectory(workspace, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        var environment = WorkTree.With(launch.Environment, launch.Tree);
        List<string> argv;
        if (sandbox is null)
        {
            Unenforceable(launch.Egress);
            argv = ["sh", "-c", AgentWrapper.Script, AgentWrapper.ProgramName, runtime, Path.Combine(workspace, launch.WorkingDirectory),
                launch.RepositoryUrl ?? "", launch.Branch ?? "", .. launch.Argv];
        }
        else
        {
            foreach (var path in Directory.EnumerateFileSystemEntries(runtime).Prepend(runtime).Append(workspace))
            {
                sandbox.GiveToSandbox(path);
            }
            argv = sandbox.Wrap(
                ["sh", "-c", AgentWrapper.Script, AgentWrapper.ProgramName, Isolated.Runtime, $"{Isolated.Workspace}/{launch.WorkingDirectory}",
                    launch.RepositoryUrl ?? "", launch.Branch ?? "", .. launch.Argv],
                [new SandboxMount(runtime, Isolated.Runtime, Writable: true), new SandboxMount(workspace, Isolated.Workspace, Writable: true),
                    .. launch.Tree is { } tree ? [new SandboxMount(tree.Source, tree.Source, Writable: false)] : Array.Empty<SandboxMount>()],
                Isolated.Workspace, cgroups: Limits(launch.TeamId), egress: launch.Egress);
        }

        // Its own session, and none of the server's open files: a sandbox launcher that inherited the server's stdout
        // would hold it (a pipe to systemd or to whoever started the server) open for the agent's whole life. What the
        // launcher itself prints (a sandbox that cannot start) goes to launcher.log beside the agent's output.
        var info = new ProcessStartInfo("sh") { UseShellExecute = false };
        foreach (var arg in (string[])["-c", "log=$1; shift; exec setsid \"$@\" </dev/null >/dev/null 2>>\"$log\"", "covibe-launch", Path.Combine(runtime, "launcher.log"), .. argv])
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment.Clear();
        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }
        using var process = Process.Start(info) ?? throw new IOException("Could not start the agent's launcher (sh).");
        var startTime = ProcFs.StartTime(process.Id) ?? 0;
        return Task.FromResult(new AgentProcess(Name, runtime, process.Id, startTime));
    }

    public Task<AgentProcessState> ProbeAsync(AgentProcess process, CancellationToken cancellationToken) =>
        Task.FromResult(Probe(process));

    public Task<int> ReadOutputAsync(AgentProcess process, long offset, Memory<byte> buffer, CancellationToken cancellationToken) =>
        RuntimeFiles.ReadAsync(LocalLogPath(process), offset, buffer, cancellationToken);

    public string LocalLogPath(AgentProcess process) => Path.Combine(process.RuntimeDirectory, "output.log");

    public Task WriteInputAsync(AgentProcess process, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (Probe(process).State is AgentRunState.Exited or AgentRunState.Gone)
        {
            throw new AgentNotRunningException("The agent has exited; it reads no more input.");
        }
        RuntimeFiles.WriteInput(process.RuntimeDirectory, data.Span);
        return Task.CompletedTask;
    }

    public Task SignalAsync(AgentProcess process, AgentSignal signal, CancellationToken cancellationToken)
    {
        if (Probe(process).State is AgentRunState.Exited or AgentRunState.Gone)
        {
            return Task.CompletedTask; // never signal a PID that may belong to someone else now
        }
        switch (signal)
        {
            case AgentSignal.Interrupt:
                foreach (var child in Wrapper(process) is { } wrapper ? ProcFs.Children(wrapper) : [])
                {
                    Native.Kill(child, Native.SIGINT);
                }
                break;
            case AgentSignal.Terminate:
                Native.Kill(-process.Pid, Native.SIGTERM);
                break;
            case AgentSignal.Kill:
                Native.Kill(-process.Pid, Native.SIGKILL);
                break;
        }
        return Task.CompletedTask;
    }

    /// <summary>
    /// A shell on this machine: as it is with the server's privileges, or in the sandbox, with the team's workspace at
    /// <see cref="Isolated.Workspace"/> and home there, leading a session of its own inside (<c>setsid --ctty</c>) so that
    /// job control works in its PID namespace.
    /// </summary>
    public Task<IPty> OpenTerminalAsync(ShellLaunch launch, CancellationToken cancellationToken)
    {
        var shell = launch.Shell;
        if (sandbox is null)
        {
            Unenforceable(launch.Egress);
            return Task.FromResult<IPty>(LocalPty.Start(shell));
        }
        var workspace = launch.Workspace ?? throw new ArgumentException("A sandboxed shell needs its team's workspace.");
        return Task.FromResult<IPty>(LocalPty.Start(sandbox.WrapShell(shell, [new SandboxMount(workspace, Isolated.Workspace, Writable: true)],
            Isolated.InWorkspace(workspace, shell.WorkingDirectory), Isolated.Workspace, Limits(launch.TeamId), launch.Egress)));
    }

    /// <summary>With the server's privileges nothing walls a program in: a team whose egress is restricted runs nothing here.</summary>
    private static void Unenforceable(Egress.TeamEgress? egress)
    {
        if (egress is { Policy.Restricted: true })
        {
            throw new Egress.EgressNotEnforcedException(egress.TeamId);
        }
    }

    public Task CloseInputAsync(AgentProcess process, CancellationToken cancellationToken)
    {
        var holderText = RuntimeFiles.ReadText(Path.Combine(process.RuntimeDirectory, "holder"));
        if (Probe(process).State is AgentRunState.Exited or AgentRunState.Gone || holderText is null)
        {
            throw new AgentNotRunningException("The agent has exited; its input is closed already.");
        }
        // The holder file names the PID as the wrapper sees it (inside the sandbox's PID namespace).
        if (int.TryParse(holderText, CultureInfo.InvariantCulture, out var holder) && Wrapper(process) is { } wrapper
            && ProcFs.Children(wrapper).FirstOrDefault(child => ProcFs.InnermostPid(child) == holder) is var match and > 0)
        {
            Native.Kill(match, Native.SIGTERM);
        }
        return Task.CompletedTask;
    }

    /// <summary>The team's group to join (null without per-team limits); a group that cannot be made fails the start, saying why.</summary>
    private IReadOnlyList<string>? Limits(string? teamId)
    {
        if (cgroups is null || teamId is null)
        {
            return null;
        }
        try
        {
            return cgroups.Enter(teamId);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"The team's limits ({cgroups.Kind}) could not be set up on this machine: {e.Message}", e);
        }
    }

    /// <summary>The wrapper shell's PID on this machine: the started process itself, or inside the sandbox below bubblewrap.</summary>
    private static int? Wrapper(AgentProcess process) =>
        process.Backend == BackendName ? process.Pid : ProcFs.FindDescendant(process.Pid, argv => argv.Length > 3 && argv[3] == AgentWrapper.ProgramName);

    private static AgentProcessState Probe(AgentProcess process)
    {
        var runningFile = Path.Combine(process.RuntimeDirectory, "running");
        DateTime? started = File.Exists(runningFile) ? File.GetLastWriteTimeUtc(runningFile) : null;
        if (ExitCode(process) is { } code)
        {
            return new AgentProcessState(AgentRunState.Exited, code, started);
        }
        if (ProcFs.StartTime(process.Pid) != process.StartTime)
        {
            // It may have finished between the two checks.
            if (ExitCode(process) is { } late)
            {
                return new AgentProcessState(AgentRunState.Exited, late, started);
            }
            // The wrapper is gone without an exit code (a SIGTERM it did not ignore), but the agent
            // may live on in its process group (one that ignores SIGTERM): not gone until it is, so
            // a kill escalates to SIGKILL for the whole group.
            return ProcFs.GroupMembers(process.Pid).Count > 0
                ? new AgentProcessState(AgentRunState.Running, StartedAt: started)
                : new AgentProcessState(AgentRunState.Gone);
        }
        return new AgentProcessState(started is null ? AgentRunState.Starting : AgentRunState.Running, StartedAt: started);
    }

    private static int? ExitCode(AgentProcess process) => RuntimeFiles.ExitCode(process.RuntimeDirectory);
}
