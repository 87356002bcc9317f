using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Covibe.Execution;

/// <summary>
/// Reads files in an agent's runtime directory, which the agent itself may write: a symlink it
/// planted is never followed (it would make the server read its own files for the agent), and a
/// FIFO or directory in a file's place is refused instead of blocking the reader.
/// </summary>
internal static class RuntimeFiles
{
    /// <summary>The file opened for reading, or null if it is missing or a symlink.</summary>
    public static SafeFileHandle? OpenRead(string path)
    {
        var fd = Native.Open(path, Native.O_RDONLY | Native.O_NOFOLLOW | Native.O_NONBLOCK | Native.O_CLOEXEC);
        return fd < 0 ? null : new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>Reads at <paramref name="offset"/>; 0 when the file is missing or not a regular file.</summary>
    public static async Task<int> ReadAsync(string path, long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        using var handle = OpenRead(path);
        if (handle is null)
        {
            return 0;
        }
        try
        {
            return await RandomAccess.ReadAsync(handle, buffer, offset, cancellationToken);
        }
        catch (Exception e) when (e is NotSupportedException or IOException)
        {
            return 0; // a FIFO (not seekable) or a directory where the file should be
        }
    }

    /// <summary>A small text file's content (at most 64 bytes), or null.</summary>
    public static string? ReadText(string path)
    {
        using var handle = OpenRead(path);
        if (handle is null)
        {
            return null;
        }
        Span<byte> buffer = stackalloc byte[64];
        try
        {
            return Encoding.UTF8.GetString(buffer[..RandomAccess.Read(handle, buffer, 0)]).Trim();
        }
        catch (Exception e) when (e is NotSupportedException or IOException)
        {
            return null;
        }
    }

    /// <summary>Opens the agent's stdin FIFO for writing without blocking; a negative errno when nobody reads it or it is not there.</summary>
    public static int OpenFifoForWriting(string path)
    {
        var fd = Native.Open(path, Native.O_WRONLY | Native.O_NONBLOCK | Native.O_NOFOLLOW | Native.O_CLOEXEC);
        return fd >= 0 ? fd : -Marshal.GetLastPInvokeError();
    }

    /// <summary>
    /// Makes an agent's runtime directory on this machine (owner-only): the stdin FIFO, an empty
    /// log (so readers never race the wrapper's first write) and any first input.
    /// </summary>
    public static string Prepare(string runtimeRoot, AgentLaunch launch)
    {
        var runtime = Path.Combine(runtimeRoot, launch.AgentId);
        Directory.CreateDirectory(runtime, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        if (Native.MkFifo(Path.Combine(runtime, "stdin"), 0b110_000_000) != 0)
        {
            throw new IOException($"Cannot create the agent's input FIFO (errno {Marshal.GetLastPInvokeError()}).");
        }
        // Kept if it is there: what happened before the program (a preview's image build) starts the log.
        new FileStream(Path.Combine(runtime, "output.log"), FileMode.OpenOrCreate, FileAccess.Write).Dispose();
        if (launch.InitialInput is { } initial)
        {
            File.WriteAllBytes(Path.Combine(runtime, "first-input"), initial);
        }
        return runtime;
    }

    /// <summary>
    /// Undoes <see cref="Prepare"/> for a job that did not start (its place did not answer): the input FIFO goes, so a start
    /// elsewhere prepares it afresh; the log stays (what was written before the start belongs to the job).
    /// </summary>
    public static void Unprepare(string runtimeRoot, AgentLaunch launch) => File.Delete(Path.Combine(runtimeRoot, launch.AgentId, "stdin"));

    /// <summary>The exit code the wrapper recorded, or null while it has not.</summary>
    public static int? ExitCode(string runtime) =>
        ReadText(Path.Combine(runtime, "exit")) is { } text && int.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out var code) ? code : null;

    /// <summary>Writes to the agent's stdin FIFO without blocking on an agent that does not read.</summary>
    public static void WriteInput(string runtime, ReadOnlySpan<byte> data)
    {
        var fd = OpenFifoForWriting(Path.Combine(runtime, "stdin"));
        if (fd < 0)
        {
            throw new AgentNotRunningException($"The agent's input is closed (errno {-fd}).");
        }
        using var stream = new FileStream(new SafeFileHandle(fd, ownsHandle: true), FileAccess.Write, bufferSize: 0);
        try
        {
            stream.Write(data);
        }
        catch (IOException e)
        {
            throw new AgentNotRunningException($"The agent is not reading its input ({e.Message}).");
        }
    }
}
