using System.Runtime.InteropServices;

namespace Covibe.Execution;

internal static partial class Native
{
    public const int SIGHUP = 1;
    public const int SIGINT = 2;
    public const int SIGKILL = 9;
    public const int SIGTERM = 15;
    public const int O_RDONLY = 0x0;
    public const int O_WRONLY = 0x1;
    public const int O_NOFOLLOW = 0x20000;
    public const int O_NONBLOCK = 0x800;
    public const int O_CLOEXEC = 0x80000;
    public const int ENXIO = 6;
    public const int ESRCH = 3;

    // int kill(pid_t pid, int sig);
    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    // int open(const char *pathname, int flags);
    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    // int mkfifo(const char *pathname, mode_t mode);
    [LibraryImport("libc", EntryPoint = "mkfifo", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int MkFifo(string path, uint mode);

    // int lchown(const char *pathname, uid_t owner, gid_t group);
    [LibraryImport("libc", EntryPoint = "lchown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int LChown(string path, uint owner, uint group);

    public static bool IsRoot => GetEuid() == 0;

    public const int PR_SET_DUMPABLE = 4;

    // int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5);
    [LibraryImport("libc", EntryPoint = "prctl", SetLastError = true)]
    public static partial int Prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    /// <summary>This process's effective user and group.</summary>
    public static (uint Uid, uint Gid) CurrentUser => (GetEuid(), GetEgid());

    // gid_t getegid(void);
    [LibraryImport("libc", EntryPoint = "getegid")]
    public static partial uint GetEgid();

    // uid_t geteuid(void);
    [LibraryImport("libc", EntryPoint = "geteuid")]
    public static partial uint GetEuid();
}

/// <summary>Who this process runs as, and how it guards itself.</summary>
public static class CurrentProcess
{
    public static bool IsRoot => Native.IsRoot;

    public static (uint Uid, uint Gid) User => Native.CurrentUser;

    /// <summary>
    /// Makes this process non-dumpable: its /proc files (environment, memory) become root's, and
    /// processes of the same user (shells and agents it starts) can neither read them nor ptrace it.
    /// The environment holds JWT_SECRET and ENCRYPTION_KEY. Children start dumpable again at exec.
    /// </summary>
    public static void DenyInspection()
    {
        if (Native.Prctl(Native.PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        {
            throw new IOException($"prctl(PR_SET_DUMPABLE) failed (errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}).");
        }
    }
}
