using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Covibe.Execution.Ssh;

/// <summary>
/// Runs agents on VMs over SSH (seed 001's SSH proxy strategy) under the same wrapper as local
/// agents: detached in their own session, stdin a FIFO, output appended to
/// <c>~/agent_logs/&lt;id&gt;/output.log</c> on the VM (seed 001's layout). The server keeps a mirror of
/// that log (its archive), fed by <c>tail -F</c> over SSH and resumed from the mirror's length after
/// any drop, so byte positions are the same and nothing is lost or repeated.
/// </summary>
public sealed class SshBackend(SshClient ssh, Func<string, CancellationToken, Task<SshTarget>> connect, string mirrorRoot) : IExecutionBackend, IAsyncDisposable
{
    public const string BackendName = "ssh";

    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(30);
    private readonly ConcurrentDictionary<string, Mirror> _mirrors = new();

    public string Name => BackendName;

    public bool Remote => true;

    public async Task<AgentProcess> StartAsync(AgentLaunch launch, CancellationToken cancellationToken)
    {
        var target = await connect(launch.Target ?? throw new ArgumentException("An SSH agent needs a VM."), cancellationToken);
        string[] wrapperEnvironment = [];
        if (launch.Tree is { } tree)
        {
            // The VM cannot borrow the server's mirror: the starting point goes there as a bundle, which the wrapper clones.
            var copied = await ssh.RunAsync(target, TreeBundles.CopyArgv($"{VmScripts.RuntimeOf(launch)}/tree.bundle"),
                await TreeBundles.CreateAsync(tree, cancellationToken), TimeSpan.FromMinutes(10), cancellationToken);
            if (copied.ExitCode != 0 || !copied.Stdout.Trim().EndsWith("/tree.bundle", StringComparison.Ordinal))
            {
                throw new IOException($"The agent's work tree could not be copied to the VM: {SshClient.Explain(copied, target)}");
            }
            // For the wrapper itself (it unsets them before the agent starts).
            wrapperEnvironment = ["env", .. (tree with { Source = copied.Stdout.Trim() }).Environment.Select(e => $"{e.Key}={e.Value}")];
        }
        // Set on top of the VM user's own environment (the caller leaves the server's out).
        string[] argv = [.. wrapperEnvironment,
            .. VmScripts.LaunchArgv(VmScripts.RuntimeOf(launch), VmScripts.WorkingDirectoryOf(launch), launch.RepositoryUrl, launch.Branch, launch.Environment, launch.Argv)];
        var result = await ssh.RunAsync(target, argv, launch.InitialInput ?? [], CommandTimeout, cancellationToken);
        var parts = result.Stdout.Trim().Split(' ', 3);
        if (result.ExitCode != 0 || parts.Length != 3 || !int.TryParse(parts[0], CultureInfo.InvariantCulture, out var pid))
        {
            throw new IOException($"The agent could not be started on the VM: {SshClient.Explain(result, target)}");
        }
        Directory.CreateDirectory(Path.Combine(mirrorRoot, launch.AgentId), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.Create(MirrorPath(launch.AgentId)).Dispose();
        return new AgentProcess(BackendName, parts[2], pid, long.Parse(parts[1], CultureInfo.InvariantCulture), launch.Target);
    }

    public async Task<(int Code, string Output, string Errors)> RunShortAsync(string target, IReadOnlyList<string> argv, ReadOnlyMemory<byte>? stdin, TimeSpan timeout,
        CancellationToken cancellationToken)
    {
        var result = await ssh.RunAsync(await connect(target, cancellationToken), argv, stdin, timeout, cancellationToken);
        return (result.ExitCode, result.Stdout, result.Stderr);
    }

    public async Task<AgentProcessState> ProbeAsync(AgentProcess process, CancellationToken cancellationToken)
    {
        var target = await connect(process.Target!, cancellationToken);
        SshResult result;
        try
        {
            result = await ssh.RunAsync(target, ["sh", "-c", VmScripts.Prober, "covibe-probe", process.RuntimeDirectory, Str(process.Pid), Str(process.StartTime)], null, CommandTimeout, cancellationToken);
        }
        catch (SshException)
        {
            return new AgentProcessState(AgentRunState.Running); // unreachable for now: keep waiting, do not guess
        }
        var fields = result.Stdout.Trim().Split(' ');
        if (result.ExitCode != 0 || fields.Length != 3)
        {
            return new AgentProcessState(AgentRunState.Running);
        }
        var remoteSize = long.Parse(fields[2], CultureInfo.InvariantCulture);
        var state = fields[0] switch
        {
            "exit" => new AgentProcessState(AgentRunState.Exited, int.Parse(fields[1], CultureInfo.InvariantCulture)),
            "gone" => new AgentProcessState(AgentRunState.Gone),
            "running" => new AgentProcessState(AgentRunState.Running),
            _ => new AgentProcessState(AgentRunState.Starting),
        };
        if (state.State is AgentRunState.Exited or AgentRunState.Gone)
        {
            var mirror = MirrorFor(process, target);
            if (new FileInfo(MirrorPath(AgentIdOf(process))).Length < remoteSize)
            {
                return new AgentProcessState(AgentRunState.Running); // finished, but the mirror is still catching up
            }
            await mirror.StopAsync();
        }
        return state;
    }

    public async Task<int> ReadOutputAsync(AgentProcess process, long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var path = MirrorPath(AgentIdOf(process));
        if (!_mirrors.ContainsKey(AgentIdOf(process)) && process.Target is { } vm)
        {
            MirrorFor(process, await connect(vm, cancellationToken));
        }
        if (!File.Exists(path))
        {
            return 0;
        }
        using SafeFileHandle handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        return await RandomAccess.ReadAsync(handle, buffer, offset, cancellationToken);
    }

    public async Task WriteInputAsync(AgentProcess process, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        var target = await connect(process.Target!, cancellationToken);
        var result = await ssh.RunAsync(target, ["sh", "-c", VmScripts.Input, "covibe-input", process.RuntimeDirectory], data, CommandTimeout, cancellationToken);
        if (result.ExitCode != 0)
        {
            throw new AgentNotRunningException(result.ExitCode == 3 ? "The agent has exited; it reads no more input." : SshClient.Explain(result, target));
        }
    }

    public Task SignalAsync(AgentProcess process, AgentSignal signal, CancellationToken cancellationToken) =>
        SignalAsync(process, VmScripts.SignalName(signal), cancellationToken);

    public Task CloseInputAsync(AgentProcess process, CancellationToken cancellationToken) => SignalAsync(process, "eof", cancellationToken);

    private async Task SignalAsync(AgentProcess process, string which, CancellationToken cancellationToken)
    {
        var target = await connect(process.Target!, cancellationToken);
        await ssh.RunAsync(target, ["sh", "-c", VmScripts.Signaller, "covibe-signal", process.RuntimeDirectory, Str(process.Pid), Str(process.StartTime), which], null, CommandTimeout, cancellationToken);
    }

    private const string RemoteShell = "cd -- \"$1\" 2>/dev/null || cd; exec \"${SHELL:-/bin/sh}\" -l";

    /// <summary>
    /// A login shell on the VM as its user (<c>ssh -tt</c> over the shared connection), in <see cref="ShellLaunch.RemoteDirectory"/>
    /// or the shell's working directory there (relative to that user's home; the home if it is missing).
    /// </summary>
    public async Task<IPty> OpenTerminalAsync(ShellLaunch launch, CancellationToken cancellationToken)
    {
        var vmId = launch.Target ?? throw new ArgumentException("A VM's shell needs the VM.");
        var shell = launch.Shell;
        try
        {
            var target = await connect(vmId, cancellationToken);
            var info = await ssh.InteractiveAsync(target, ["sh", "-c", RemoteShell, "covibe-terminal", launch.RemoteDirectory ?? shell.WorkingDirectory],
                shell.Columns, shell.Rows, cancellationToken);
            return LocalPty.Start(info);
        }
        catch (SshException e)
        {
            throw new IOException(e.Message, e);
        }
    }

    private Mirror MirrorFor(AgentProcess process, SshTarget target) =>
        _mirrors.GetOrAdd(AgentIdOf(process), id => new Mirror(ssh, target, process.RuntimeDirectory, MirrorPath(id)));

    private string MirrorPath(string agentId) => Path.Combine(mirrorRoot, agentId, "output.log");

    private static string AgentIdOf(AgentProcess process) => Path.GetFileName(process.RuntimeDirectory);

    private static string Str(long value) => value.ToString(CultureInfo.InvariantCulture);

    public async ValueTask DisposeAsync()
    {
        foreach (var mirror in _mirrors.Values)
        {
            await mirror.StopAsync();
        }
    }

    /// <summary>Copies the remote log into the local mirror, resuming from the mirror's length after any drop.</summary>
    private sealed class Mirror : IDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _pump;
        private int _stopped;

        public Mirror(SshClient ssh, SshTarget target, string runtimeDirectory, string path)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            _pump = PumpAsync(ssh, target, $"{runtimeDirectory}/output.log", path, _stop.Token);
        }

        public async Task StopAsync()
        {
            if (Interlocked.Exchange(ref _stopped, 1) == 1)
            {
                return;
            }
            await _stop.CancelAsync();
            try
            {
                await _pump;
            }
            catch (OperationCanceledException)
            {
            }
            Dispose();
        }

        public void Dispose() => _stop.Dispose();

        private static async Task PumpAsync(SshClient ssh, SshTarget target, string remote, string path, CancellationToken cancellationToken)
        {
            await Task.Yield();
            var buffer = new byte[64 * 1024];
            var delay = TimeSpan.FromMilliseconds(250);
            while (!cancellationToken.IsCancellationRequested)
            {
                await using (var file = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite))
                {
                    using var tail = await ssh.StreamAsync(target, ["tail", "-c", $"+{file.Length + 1}", "-F", remote], cancellationToken);
                    try
                    {
                        var stdout = tail.StandardOutput.BaseStream;
                        int n;
                        while ((n = await stdout.ReadAsync(buffer, cancellationToken)) > 0)
                        {
                            await file.WriteAsync(buffer.AsMemory(0, n), cancellationToken);
                            await file.FlushAsync(cancellationToken);
                            delay = TimeSpan.FromMilliseconds(250); // it works again: next drop retries soon
                        }
                    }
                    finally
                    {
                        if (!tail.HasExited)
                        {
                            tail.Kill(entireProcessTree: true);
                        }
                    }
                }
                // The connection dropped: take it up again from what the mirror holds, backing off while the VM stays away.
                await Task.Delay(delay, cancellationToken);
                delay = TimeSpan.FromSeconds(Math.Min(30, delay.TotalSeconds * 2));
            }
        }
    }
}
