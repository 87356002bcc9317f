using Docker.DotNet;
using Docker.DotNet.Models;

namespace Covibe.Execution.Containers;

/// <summary>
/// A terminal in a container: an exec with a TTY through the Engine API, its hijacked stream
/// read by the session's reader thread. The engine owns the PTY; resizes go through the API, and
/// a hang-up signals the exec's process on this machine (it is a session leader there) when the
/// engine is local, or closes the stream otherwise.
/// </summary>
public sealed class ContainerPty : IPty
{
    private readonly DockerClient _docker;
    private readonly string _execId;
    private readonly MultiplexedStream _stream;
    private readonly Lock _writeLock = new();
    private volatile bool _ended;
    private int? _exitCode;
    private int _disposed;
    // Read only by the session's reader thread: one buffer for every read, not one per read.
    private byte[] _chunk = [];

    private ContainerPty(DockerClient docker, string execId, MultiplexedStream stream, int processId)
    {
        _docker = docker;
        _execId = execId;
        _stream = stream;
        ProcessId = processId;
    }

    /// <summary>The exec's process on this machine (0 if the engine does not say).</summary>
    public int ProcessId { get; }

    /// <summary>Starts <paramref name="argv"/> in <paramref name="container"/> on a new TTY of the given size.</summary>
    public static async Task<ContainerPty> StartAsync(DockerClient docker, string container, string user, IReadOnlyList<string> argv, string workingDirectory,
        IReadOnlyDictionary<string, string> environment, int columns, int rows, CancellationToken cancellationToken)
    {
        var exec = await docker.Exec.CreateContainerExecAsync(container, new ContainerExecCreateParameters
        {
            Cmd = [.. argv],
            User = user,
            TTY = true,
            AttachStdin = true,
            AttachStdout = true,
            AttachStderr = true,
            WorkingDir = workingDirectory,
            Env = [.. environment.Select(e => $"{e.Key}={e.Value}")],
        }, cancellationToken);
        var stream = await docker.Exec.StartContainerExecAsync(exec.ID, new ContainerExecStartParameters { TTY = true }, cancellationToken);
        try
        {
            await docker.Exec.ResizeExecTtyAsync(exec.ID, new ContainerResizeParameters { Width = columns, Height = rows }, cancellationToken);
            var inspect = await docker.Exec.InspectContainerExecAsync(exec.ID, cancellationToken);
            return new ContainerPty(docker, exec.ID, stream, (int)inspect.Pid);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    public int Read(Span<byte> buffer, CancellationToken cancellationToken)
    {
        if (_ended)
        {
            return 0;
        }
        if (_chunk.Length < buffer.Length)
        {
            _chunk = new byte[buffer.Length];
        }
        MultiplexedStream.ReadResult result;
        try
        {
            // The session's own reader thread: blocking here is what it is for.
            result = _stream.ReadOutputAsync(_chunk, 0, buffer.Length, cancellationToken).GetAwaiter().GetResult();
        }
        catch (IOException)
        {
            result = default;
        }
        if (result.EOF || result.Count == 0)
        {
            _ended = true;
            return 0;
        }
        _chunk.AsSpan(0, result.Count).CopyTo(buffer);
        return result.Count;
    }

    public void Write(ReadOnlySpan<byte> data)
    {
        var bytes = data.ToArray();
        lock (_writeLock)
        {
            using var timeout = new CancellationTokenSource(LocalPty.WriteTimeout);
            try
            {
                _stream.WriteAsync(bytes, 0, bytes.Length, timeout.Token).GetAwaiter().GetResult();
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException("The program in the container has taken none of the input for 5 s.");
            }
        }
    }

    public void Resize(int columns, int rows) =>
        _docker.Exec.ResizeExecTtyAsync(_execId, new ContainerResizeParameters { Width = columns, Height = rows }, CancellationToken.None).GetAwaiter().GetResult();

    /// <summary>Known once the stream has ended (one question to the engine then, none before).</summary>
    public int? TryGetExitCode()
    {
        if (!_ended)
        {
            return null;
        }
        if (_exitCode is null)
        {
            try
            {
                var inspect = _docker.Exec.InspectContainerExecAsync(_execId, CancellationToken.None).GetAwaiter().GetResult();
                _exitCode = inspect.Running ? null : (int?)(inspect.ExitCode ?? 0);
            }
            catch (DockerApiException)
            {
                _exitCode = 129; // the container went away with it
            }
        }
        return _exitCode;
    }

    public async Task HangUpAsync(TimeSpan grace, CancellationToken cancellationToken)
    {
        var local = ProcessId > 0 && File.Exists($"/proc/{ProcessId}/stat");
        if (local)
        {
            Native.Kill(ProcessId, Native.SIGHUP);
        }
        var deadline = Environment.TickCount64 + (long)grace.TotalMilliseconds;
        while (!_ended && Environment.TickCount64 < deadline)
        {
            await Task.Delay(20, cancellationToken);
        }
        if (local)
        {
            foreach (var pid in ProcFs.SessionMembers(ProcessId))
            {
                Native.Kill(pid, Native.SIGKILL);
            }
        }
        else if (!_ended)
        {
            try
            {
                _stream.CloseWrite();
            }
            catch (Exception e) when (e is ObjectDisposedException or IOException or System.Net.Sockets.SocketException)
            {
                // The container went away with its exec (a released box): nothing left to hang up.
            }
        }
        for (var i = 0; i < 100 && !_ended; i++)
        {
            await Task.Delay(20, cancellationToken);
        }
        _ended = true;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _stream.Dispose();
        }
    }
}
