using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Covibe.Execution;

/// <summary>
/// Runs agents as processes on the server's machine, each in its own session (<c>setsid</c>) so
/// that stopping or killing the server leaves them running.
/// </summary>
public sealed class LocalBackend(string runtimeRoot) : IExecutionBackend
{
    public const string BackendName = "local";

    public string Name => BackendName;

    public Task<AgentProcess> StartAsync(AgentLaunch launch, CancellationToken cancellationToken)
    {
        var runtime = Path.Combine(runtimeRoot, launch.AgentId);
        Directory.CreateDirectory(runtime, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var fifo = Path.Combine(runtime, "stdin");
        if (Native.MkFifo(fifo, 0b110_000_000) != 0)
        {
            throw new IOException($"Cannot create the agent's input FIFO (errno {Marshal.GetLastPInvokeError()}).");
        }
        // Created up front so that readers never race the wrapper's first write.
        File.Create(Path.Combine(runtime, "output.log")).Dispose();
        if (launch.InitialInput is { } initial)
        {
            File.WriteAllBytes(Path.Combine(runtime, "first-input"), initial);
        }

        var info = new ProcessStartInfo("setsid") { UseShellExecute = false };
        foreach (var arg in (string[])["sh", "-c", AgentWrapper.Script, AgentWrapper.ProgramName, runtime, launch.WorkingDirectory, launch.RepositoryUrl ?? "", launch.Branch ?? ""])
        {
            info.ArgumentList.Add(arg);
        }
        foreach (var arg in launch.Argv)
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment.Clear();
        foreach (var (key, value) in launch.Environment)
        {
            info.Environment[key] = value;
        }
        using var process = Process.Start(info) ?? throw new IOException("Could not start setsid.");
        var startTime = ProcFs.StartTime(process.Id) ?? 0;
        return Task.FromResult(new AgentProcess(BackendName, runtime, process.Id, startTime));
    }

    public Task<AgentProcessState> ProbeAsync(AgentProcess process, CancellationToken cancellationToken) =>
        Task.FromResult(Probe(process));

    public async Task<int> ReadOutputAsync(AgentProcess process, long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(Path.Combine(process.RuntimeDirectory, "output.log"), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (FileNotFoundException)
        {
            return 0;
        }
        using (handle)
        {
            return await RandomAccess.ReadAsync(handle, buffer, offset, cancellationToken);
        }
    }

    public Task WriteInputAsync(AgentProcess process, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (Probe(process).State is AgentRunState.Exited or AgentRunState.Gone)
        {
            throw new AgentNotRunningException("The agent has exited; it reads no more input.");
        }
        // Non-blocking: opening a FIFO nobody reads would otherwise wait forever.
        var fd = Native.Open(Path.Combine(process.RuntimeDirectory, "stdin"), Native.O_WRONLY | Native.O_NONBLOCK | Native.O_CLOEXEC);
        if (fd < 0)
        {
            throw new AgentNotRunningException($"The agent's input is closed (errno {Marshal.GetLastPInvokeError()}).");
        }
        using var stream = new FileStream(new SafeFileHandle(fd, ownsHandle: true), FileAccess.Write, bufferSize: 0);
        try
        {
            stream.Write(data.Span);
        }
        catch (IOException e)
        {
            throw new AgentNotRunningException($"The agent is not reading its input ({e.Message}).");
        }
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
                foreach (var child in ProcFs.Children(process.Pid))
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

    public Task CloseInputAsync(AgentProcess process, CancellationToken cancellationToken)
    {
        var holderFile = Path.Combine(process.RuntimeDirectory, "holder");
        if (Probe(process).State is AgentRunState.Exited or AgentRunState.Gone || !File.Exists(holderFile))
        {
            throw new AgentNotRunningException("The agent has exited; its input is closed already.");
        }
        if (int.TryParse(File.ReadAllText(holderFile).Trim(), System.Globalization.CultureInfo.InvariantCulture, out var holder)
            && ProcFs.Children(process.Pid).Contains(holder))
        {
            Native.Kill(holder, Native.SIGTERM);
        }
        return Task.CompletedTask;
    }

    private static AgentProcessState Probe(AgentProcess process)
    {
        var exitFile = Path.Combine(process.RuntimeDirectory, "exit");
        var runningFile = Path.Combine(process.RuntimeDirectory, "running");
        DateTime? started = File.Exists(runningFile) ? File.GetLastWriteTimeUtc(runningFile) : null;
        if (File.Exists(exitFile) && int.TryParse(File.ReadAllText(exitFile).Trim(), System.Globalization.CultureInfo.InvariantCulture, out var code))
        {
            return new AgentProcessState(AgentRunState.Exited, code, started);
        }
        if (ProcFs.StartTime(process.Pid) != process.StartTime)
        {
            // It may have finished between the two checks.
            return File.Exists(exitFile) ? Probe(process) : new AgentProcessState(AgentRunState.Gone);
        }
        return new AgentProcessState(started is null ? AgentRunState.Starting : AgentRunState.Running, StartedAt: started);
    }
}
