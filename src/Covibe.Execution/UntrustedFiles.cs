namespace Covibe.Execution;

/// <summary>
/// Reading files that members' code could have planted (a repository's files, a job's log) without following a
/// symlink at the last step or blocking on a FIFO: for features outside this library.
/// </summary>
public static class UntrustedFiles
{
    /// <summary>Reads at <paramref name="offset"/>; 0 when the file is missing, not a regular file, or ends there.</summary>
    public static Task<int> ReadAsync(string path, long offset, Memory<byte> buffer, CancellationToken cancellationToken) =>
        RuntimeFiles.ReadAsync(path, offset, buffer, cancellationToken);

    /// <summary>The start of a regular file (at most <paramref name="limit"/> bytes) as text, or null.</summary>
    public static string? ReadText(string path, int limit)
    {
        var info = new FileInfo(path);
        if (!info.Exists || info.LinkTarget is not null)
        {
            return null;
        }
        using var handle = RuntimeFiles.OpenRead(path);
        if (handle is null)
        {
            return null;
        }
        var buffer = new byte[limit];
        try
        {
            return System.Text.Encoding.UTF8.GetString(buffer, 0, RandomAccess.Read(handle, buffer, 0));
        }
        catch (Exception e) when (e is IOException or NotSupportedException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Whether this process runs as root (files it makes then belong to root, not to the sandbox's user).</summary>
    public static bool RunningAsRoot => Native.IsRoot;

    /// <summary>Makes <paramref name="path"/> (not a link it holds) the given user's, when this process is root; false when it is not root and could not.</summary>
    public static bool GiveTo(string path, uint uid, uint gid)
    {
        if (Native.GetEuid() != 0)
        {
            return false;
        }
        if (Native.LChown(path, uid, gid) != 0)
        {
            throw new IOException($"Cannot give {path} to uid {uid} (errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}).");
        }
        return true;
    }
}
