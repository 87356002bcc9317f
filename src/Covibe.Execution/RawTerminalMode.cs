using System.Runtime.InteropServices;

namespace Covibe.Execution;

/// <summary>
/// Puts this process's terminal (stdin) in raw mode until disposed: keys arrive one by one, no
/// echo, Ctrl-C is a byte rather than a signal. Done with termios directly, not by running
/// <c>stty</c>: .NET restores its own terminal settings when a child process exits.
/// </summary>
public sealed partial class RawTerminalMode : IDisposable
{
    private const int TCSANOW = 0;
    // glibc's struct termios is 60 bytes; it is handled as opaque bytes, so its layout never matters here.
    private const int TermiosSize = 256;
    private readonly int _fd;
    private readonly byte[] _saved;

    private RawTerminalMode(int fd, byte[] saved)
    {
        _fd = fd;
        _saved = saved;
    }

    /// <summary>Raw mode on <paramref name="fd"/>, or null when it is not a terminal.</summary>
    public static RawTerminalMode? Enter(int fd = 0)
    {
        var saved = new byte[TermiosSize];
        if (TcGetAttr(fd, saved) != 0)
        {
            return null;
        }
        var raw = (byte[])saved.Clone();
        CfMakeRaw(raw);
        return TcSetAttr(fd, TCSANOW, raw) == 0 ? new RawTerminalMode(fd, saved) : null;
    }

    public void Dispose() => _ = TcSetAttr(_fd, TCSANOW, _saved);

    // int tcgetattr(int fd, struct termios *termios_p);
    [LibraryImport("libc", EntryPoint = "tcgetattr", SetLastError = true)]
    private static partial int TcGetAttr(int fd, [Out] byte[] termios);

    // int tcsetattr(int fd, int optional_actions, const struct termios *termios_p);
    [LibraryImport("libc", EntryPoint = "tcsetattr", SetLastError = true)]
    private static partial int TcSetAttr(int fd, int action, byte[] termios);

    // void cfmakeraw(struct termios *termios_p);
    [LibraryImport("libc", EntryPoint = "cfmakeraw")]
    private static partial void CfMakeRaw([In, Out] byte[] termios);
}
