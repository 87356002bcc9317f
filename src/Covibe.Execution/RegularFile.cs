using Microsoft.Win32.SafeHandles;

namespace Covibe.Execution;

/// <summary>Reading files in directories where agents also keep FIFOs and sockets (their runtime directories).</summary>
public static class RegularFile
{
    /// <summary>
    /// <paramref name="path"/> opened for reading if it is a regular file; null for a FIFO (opened without waiting for a
    /// writer, as a plain open would), a socket, or a file gone since it was listed.
    /// </summary>
    public static FileStream? OpenForReading(string path)
    {
        var fd = Native.Open(path, Native.O_RDONLY | Native.O_NONBLOCK | Native.O_CLOEXEC);
        if (fd < 0)
        {
            return null;
        }
        var stream = new FileStream(new SafeFileHandle(fd, ownsHandle: true), FileAccess.Read);
        if (stream.CanSeek)
        {
            return stream;
        }
        stream.Dispose();
        return null;
    }
}
