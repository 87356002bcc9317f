using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using System.Threading.Channels;
using Covibe.Execution;
using Covibe.Protocol;

namespace Covibe.Runner;

/// <summary>
/// The runner's agents: started, fed, signalled and probed with the same scripts the server runs over SSH on an SSH VM
/// (<see cref="VmScripts"/>), in the runner user's home (<c>~/agent_logs/&lt;id&gt;</c>, <c>~/project/&lt;id&gt;</c>), detached
/// from the runner so they outlive it. Each followed agent's log is sent from the byte the server asked for, woken by its
/// writes; its state is sent whenever it changes.
/// </summary>
internal sealed partial class RunnerAgents(string home, FileChanges changes) : IDisposable
{
    private const int ChunkBytes = 64 * 1024;
    private static readonly TimeSpan ProbeInterval = TimeSpan.FromMilliseconds(300);
    private readonly ConcurrentDictionary<string, (RunnerFollow Follow, CancellationTokenSource Stop, Task Task)> _following = new();

    /// <summary>Starts an agent as the server asked: the launcher's answer is its PID, the PID's start time and its runtime directory.</summary>
    public async Task<RunnerMessage> StartAsync(RunnerMessage request, ChannelWriter<RunnerMessage> outbound, CancellationToken cancellationToken)
    {
        if (request.Launch is not { } launch || request.AgentId is not { } agentId || !AgentId().IsMatch(agentId)
            || launch.Runtime != $"agent_logs/{agentId}" || !IsRelativeInside(launch.WorkingDirectory) || launch.Argv.Length == 0)
        {
            return Refuse(request, "The start request is malformed (agent id, runtime or working directory).");
        }
        // A work tree on the team's repository: cloned by the wrapper from the bundle the server sent before (tree_data).
        string[] tree = launch is { TreeCommit: { } commit, TreeBranch: { } branch }
            ? ["env", $"COVIBE_TREE_SOURCE={Path.Combine(home, launch.Runtime, "tree.bundle")}", $"COVIBE_TREE_COMMIT={commit}", $"COVIBE_TREE_BRANCH={branch}"]
            : [];
        string[] argv = [.. tree, .. VmScripts.LaunchArgv(launch.Runtime, launch.WorkingDirectory, launch.RepositoryUrl, launch.Branch, launch.Environment, launch.Argv)];
        var input = launch.Input is { } b64 ? Convert.FromBase64String(b64) : [];
        var (code, stdout, stderr) = await RunAsync(argv, input, cancellationToken);
        var parts = stdout.Trim().Split(' ', 3);
        if (code != 0 || parts.Length != 3 || !int.TryParse(parts[0], CultureInfo.InvariantCulture, out var pid))
        {
            return Refuse(request, $"The launcher failed ({code}): {stderr.Trim()}");
        }
        var process = new RunnerProcess(parts[2], pid, long.Parse(parts[1], CultureInfo.InvariantCulture));
        Follow(new RunnerFollow(agentId, process, 0), outbound);
        return new RunnerMessage(RunnerProtocol.Result, Id: request.Id, AgentId: agentId, Process: process);
    }

    public async Task<RunnerMessage> InputAsync(RunnerMessage request, CancellationToken cancellationToken)
    {
        if (Runtime(request.Process) is not { } runtime || request.Data is null)
        {
            return Refuse(request, "The input request names no agent of this runner.");
        }
        var (code, _, stderr) = await RunAsync(["sh", "-c", VmScripts.Input, "covibe-input", runtime], Convert.FromBase64String(request.Data), cancellationToken);
        return code == 0 ? Ok(request) : Refuse(request, code == 3 ? "The agent has exited; it reads no more input." : stderr.Trim());
    }

    public async Task<RunnerMessage> SignalAsync(RunnerMessage request, CancellationToken cancellationToken)
    {
        if (Runtime(request.Process) is not { } runtime || request.Signal is not ("int" or "term" or "kill" or "eof"))
        {
            return Refuse(request, "The signal request names no agent of this runner, or no signal it knows (int, term, kill, eof).");
        }
        var p = request.Process!;
        await RunAsync(["sh", "-c", VmScripts.Signaller, "covibe-signal", runtime, Str(p.Pid), Str(p.StartTime), request.Signal], [], cancellationToken);
        return Ok(request);
    }

    /// <summary>Sends the agent's log from <see cref="RunnerFollow.From"/> and its state changes, until it has ended and all of it went out.</summary>
    public void Follow(RunnerFollow follow, ChannelWriter<RunnerMessage> outbound)
    {
        if (Runtime(follow.Process) is not { } runtime || !AgentId().IsMatch(follow.AgentId))
        {
            outbound.TryWrite(new RunnerMessage(RunnerProtocol.Error, AgentId: follow.AgentId, Error: "Not an agent directory of this runner."));
            return;
        }
        Forget(follow.AgentId);
        var stop = new CancellationTokenSource();
        follow = follow with { Process = follow.Process with { RuntimeDirectory = runtime } };
        _following[follow.AgentId] = (follow, stop, FollowAsync(follow, outbound, stop.Token));
    }

    /// <summary>The server missed part of an agent's log: send it again from <paramref name="from"/>.</summary>
    public void Refollow(string agentId, long from, ChannelWriter<RunnerMessage> outbound)
    {
        if (_following.TryGetValue(agentId, out var current))
        {
            Follow(current.Follow with { From = from }, outbound);
        }
    }

    private void Forget(string agentId)
    {
        if (_following.TryRemove(agentId, out var old))
        {
            old.Stop.Cancel();
            old.Stop.Dispose();
        }
    }

    /// <summary>Stops every follower (the connection went: the next welcome says where to go on from).</summary>
    public void ForgetAll()
    {
        foreach (var id in _following.Keys)
        {
            Forget(id);
        }
    }

    private async Task FollowAsync(RunnerFollow follow, ChannelWriter<RunnerMessage> outbound, CancellationToken cancellationToken)
    {
        await Task.Yield();
        var p = follow.Process;
        var log = Path.Combine(p.RuntimeDirectory, "output.log");
        var buffer = new byte[ChunkBytes];
        var position = follow.From;
        string? reported = null;
        var nextProbe = 0L;
        using var watch = changes.Watch(log);
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var n = Read(log, position, buffer);
                if (n > 0)
                {
                    await outbound.WriteAsync(new RunnerMessage(RunnerProtocol.Output, AgentId: follow.AgentId, Offset: position, Data: Convert.ToBase64String(buffer, 0, n)), cancellationToken);
                    position += n;
                    if (n == buffer.Length)
                    {
                        continue;
                    }
                }
                if (Stopwatch.GetTimestamp() >= nextProbe)
                {
                    nextProbe = Stopwatch.GetTimestamp() + (long)(ProbeInterval.TotalSeconds * Stopwatch.Frequency);
                    var (_, stdout, _) = await RunAsync(["sh", "-c", VmScripts.Prober, "covibe-probe", p.RuntimeDirectory, Str(p.Pid), Str(p.StartTime)], [], cancellationToken);
                    var fields = stdout.Trim().Split(' ');
                    if (fields.Length == 3 && long.TryParse(fields[2], CultureInfo.InvariantCulture, out var size))
                    {
                        var ended = fields[0] is "exit" or "gone";
                        var code = int.TryParse(fields[1], CultureInfo.InvariantCulture, out var c) ? c : (int?)null;
                        var key = $"{fields[0]} {fields[1]}";
                        if (key != reported && (!ended || position >= size))
                        {
                            reported = key;
                            await outbound.WriteAsync(new RunnerMessage(RunnerProtocol.State, AgentId: follow.AgentId, State: fields[0], ExitCode: code, Size: size), cancellationToken);
                        }
                        if (ended && position >= size)
                        {
                            return; // all of it went out; a new connection's welcome follows it again if the server still needs anything
                        }
                    }
                }
                if (watch.Notifies)
                {
                    await watch.WaitAsync(ProbeInterval, cancellationToken);
                }
                else
                {
                    await Task.Delay(50, cancellationToken);
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
        {
        }
    }

    private static int Read(string path, long offset, byte[] buffer)
    {
        try
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            return RandomAccess.Read(handle, buffer, offset);
        }
        catch (FileNotFoundException)
        {
            return 0;
        }
        catch (DirectoryNotFoundException)
        {
            return 0;
        }
    }

    /// <summary>The runtime directory, if it is one of this runner's agents' (under ~/agent_logs).</summary>
    private string? Runtime(RunnerProcess? process)
    {
        if (process is null)
        {
            return null;
        }
        var full = Path.GetFullPath(process.RuntimeDirectory);
        var root = Path.Combine(home, "agent_logs") + "/";
        return full.StartsWith(root, StringComparison.Ordinal) && AgentId().IsMatch(full[root.Length..]) ? full : null;
    }

    private static bool IsRelativeInside(string path) =>
        path.Length is > 0 and < 1000 && !path.StartsWith('/') && !path.Split('/').Any(part => part is ".." or "") && !path.Contains('\0', StringComparison.Ordinal);

    internal static async Task<(int Code, string Stdout, string Stderr)> RunAsync(IReadOnlyList<string> argv, byte[] input, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo(argv[0]) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in argv.Skip(1))
        {
            info.ArgumentList.Add(a);
        }
        // The runner's own secrets are not the agents' business.
        info.Environment.Remove(RunnerRegistration.TokenVariable);
        using var process = Process.Start(info) ?? throw new IOException($"Could not run {argv[0]}.");
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        try
        {
            await process.StandardInput.BaseStream.WriteAsync(input, cancellationToken);
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // It did not read its input (it failed first): its exit code says why.
        }
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(limit.Token);
        return (process.ExitCode, await stdout, await stderr);
    }

    internal static bool IsAgentId(string agentId) => AgentId().IsMatch(agentId);

    internal static RunnerMessage Ok(RunnerMessage request) => new(RunnerProtocol.Result, Id: request.Id, AgentId: request.AgentId);

    internal static RunnerMessage Refuse(RunnerMessage request, string error) => new(RunnerProtocol.Result, Id: request.Id, AgentId: request.AgentId, Error: error);

    private static string Str(long value) => value.ToString(CultureInfo.InvariantCulture);

    public void Dispose() => ForgetAll();

    [GeneratedRegex("^[A-Za-z0-9_-]{1,64}$")]
    private static partial Regex AgentId();
}
