using Covibe.Execution;
using Covibe.Protocol;
using Microsoft.Win32.SafeHandles;
using Covibe.Execution.Ssh;

namespace Covibe.Server.Features.Runners;

/// <summary>
/// The <c>runner</c> backend (seed 001's polling / tunnel strategies): agents on a VM whose runner dialled out to this
/// server. The runner starts them under the same wrapper and in the same layout as an SSH VM (<see cref="VmScripts"/>), and
/// sends their logs back; the server keeps a mirror of each log (as for SSH VMs), which is what the team reads. An agent
/// whose runner is away counts as running until the runner's lease runs out, then as lost.
/// </summary>
public sealed class RunnerBackend(RunnerHub hub, RunnerTerminals terminals, TimeProvider time) : IExecutionBackend
{
    public const string BackendName = "runner";

    public string Name => BackendName;

    public bool Remote => true;

    public async Task<AgentProcess> StartAsync(AgentLaunch launch, CancellationToken cancellationToken)
    {
        var vmId = launch.Target ?? throw new ArgumentException("A runner agent needs a VM.");
        var session = Connected(vmId);
        if (launch.Tree is { } tree)
        {
            // The VM cannot borrow the server's mirror: the starting point goes there as a bundle, in pieces the runner keeps.
            var bundle = await TreeBundles.CreateAsync(tree, cancellationToken);
            var offset = 0;
            do
            {
                var piece = bundle.AsMemory(offset, Math.Min(TreeChunkBytes, bundle.Length - offset));
                var taken = await session.RequestAsync(new RunnerMessage(RunnerProtocol.TreeData, AgentId: launch.AgentId, Offset: offset, Size: bundle.Length,
                    Data: Convert.ToBase64String(piece.Span)), cancellationToken);
                if (taken.Error is { } refused)
                {
                    throw new IOException($"The runner could not take the agent's work tree: {refused}");
                }
                offset += piece.Length;
            }
            while (offset < bundle.Length);
        }
        hub.Expect(vmId, launch.AgentId);
        var request = new RunnerMessage(RunnerProtocol.Start, AgentId: launch.AgentId, Launch: new RunnerLaunch(
            VmScripts.RuntimeOf(launch), VmScripts.WorkingDirectoryOf(launch), [.. launch.Argv], new Dictionary<string, string>(launch.Environment),
            launch.RepositoryUrl, launch.Branch, launch.InitialInput is { } input ? Convert.ToBase64String(input) : null, launch.Tree?.Commit, launch.Tree?.Branch));
        var reply = await session.RequestAsync(request, cancellationToken);
        if (reply.Error is { } error || reply.Process is not { } process)
        {
            throw new IOException($"The runner could not start the agent: {reply.Error ?? "it answered without a process"}");
        }
        return new AgentProcess(BackendName, process.RuntimeDirectory, process.Pid, process.StartTime, vmId);
    }

    /// <summary>A piece of a work tree's bundle per message: well under the 4 MB a message may take, base64 and all.</summary>
    private const int TreeChunkBytes = 1024 * 1024;

    public async Task<(int Code, string Output, string Errors)> RunShortAsync(string target, IReadOnlyList<string> argv, ReadOnlyMemory<byte>? stdin, TimeSpan timeout,
        CancellationToken cancellationToken)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        var reply = await Connected(target).RequestAsync(new RunnerMessage(RunnerProtocol.Run, Argv: [.. argv],
            Data: stdin is { } input ? Convert.ToBase64String(input.Span) : null), limit.Token);
        if (reply.ExitCode is not { } code)
        {
            throw new IOException($"The runner did not run it: {reply.Error ?? "it answered without an exit code"}");
        }
        return (code, reply.Data is { } data ? System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(data)) : "", reply.Error ?? "");
    }

    public Task<AgentProcessState> ProbeAsync(AgentProcess process, CancellationToken cancellationToken)
    {
        var vm = hub.Vm(process.Target!);
        var agentId = AgentIdOf(process);
        var now = time.GetUtcNow().UtcDateTime;
        if (vm.Session is null && now > vm.LeaseExpiresAt)
        {
            return Task.FromResult(new AgentProcessState(AgentRunState.Gone,
                Reason: $"The VM's runner was not heard from for {hub.Lease.TotalSeconds:0} s (its lease ran out at {vm.LeaseExpiresAt:u}); the agent may still run there, but this server no longer follows it."));
        }
        if (!vm.Agents.TryGetValue(agentId, out var report))
        {
            return Task.FromResult(new AgentProcessState(AgentRunState.Running));
        }
        var state = report.State switch
        {
            "exit" => new AgentProcessState(AgentRunState.Exited, report.ExitCode),
            "gone" => new AgentProcessState(AgentRunState.Gone),
            "starting" => new AgentProcessState(AgentRunState.Starting),
            _ => new AgentProcessState(AgentRunState.Running),
        };
        if (state.State is AgentRunState.Exited or AgentRunState.Gone)
        {
            var mirror = new FileInfo(hub.MirrorPath(agentId));
            if (!mirror.Exists || mirror.Length < report.Size)
            {
                return Task.FromResult(new AgentProcessState(AgentRunState.Running)); // ended, but its last output is still on the way
            }
            vm.Agents.TryRemove(agentId, out _);
        }
        return Task.FromResult(state);
    }

    public async Task<int> ReadOutputAsync(AgentProcess process, long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var path = hub.MirrorPath(AgentIdOf(process));
        if (!File.Exists(path))
        {
            return 0;
        }
        using SafeFileHandle handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        return await RandomAccess.ReadAsync(handle, buffer, offset, cancellationToken);
    }

    /// <summary>The node the runner is connected to follows its agents (their output arrives there); while it is connected nowhere, any node.</summary>
    public async ValueTask<bool> CanFollowAsync(AgentProcess process, CancellationToken cancellationToken) =>
        await hub.ConnectedElsewhereAsync(process.Target!, cancellationToken) is null;

    /// <summary>The mirror is written on this machine as output arrives: the supervisor wakes on its writes.</summary>
    /// <summary>The node the VM's runner is connected to starts its agents: the connection is there.</summary>
    public async ValueTask<string?> StartsElsewhereAsync(string? target, CancellationToken cancellationToken) =>
        target is null ? null : await hub.ConnectedElsewhereAsync(target, cancellationToken);

    public string? LocalLogPath(AgentProcess process) => hub.MirrorPath(AgentIdOf(process));

    public async Task WriteInputAsync(AgentProcess process, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        var session = hub.SessionOf(process.Target!)
            ?? throw new AgentNotRunningException("The VM's runner is not connected: input cannot reach the agent now. The agent runs on; send it again when the runner is back.");
        var reply = await session.RequestAsync(new RunnerMessage(RunnerProtocol.Input, AgentId: AgentIdOf(process), Data: Convert.ToBase64String(data.Span),
            Process: RunnerHub.ProcessOf(process)), cancellationToken);
        if (reply.Error is { } error)
        {
            throw new AgentNotRunningException(error);
        }
    }

    /// <summary>Sent now, or (the runner is away) as soon as it is back.</summary>
    public async Task SignalAsync(AgentProcess process, AgentSignal signal, CancellationToken cancellationToken)
    {
        if (hub.SessionOf(process.Target!) is not { } session)
        {
            hub.Vm(process.Target!).PendingSignals[AgentIdOf(process)] = signal;
            return;
        }
        try
        {
            await session.RequestAsync(RunnerHub.SignalMessage(process, VmScripts.SignalName(signal)), cancellationToken);
        }
        catch (IOException)
        {
            hub.Vm(process.Target!).PendingSignals[AgentIdOf(process)] = signal; // it went away meanwhile
        }
    }

    public async Task CloseInputAsync(AgentProcess process, CancellationToken cancellationToken)
    {
        var session = hub.SessionOf(process.Target!)
            ?? throw new AgentNotRunningException("The VM's runner is not connected: the agent's input cannot be closed now. Try again when the runner is back.");
        await session.RequestAsync(RunnerHub.SignalMessage(process, "eof"), cancellationToken);
    }

    /// <summary>A PTY on the VM, opened by its runner (the shell runs as the runner's user), in the shell's working directory there.</summary>
    public Task<IPty> OpenTerminalAsync(ShellLaunch launch, CancellationToken cancellationToken)
    {
        var vmId = launch.Target ?? throw new ArgumentException("A runner's shell needs the VM.");
        var shell = launch.Shell;
        return terminals.OpenAsync(Connected(vmId), shell.WorkingDirectory, shell.Columns, shell.Rows, cancellationToken);
    }

    private RunnerSession Connected(string vmId) =>
        hub.SessionOf(vmId) ?? throw new IOException("The VM's runner is not connected. Start `covibe runner` on the VM (or check its service), then try again.");

    private static string AgentIdOf(AgentProcess process) => Path.GetFileName(process.RuntimeDirectory);
}
