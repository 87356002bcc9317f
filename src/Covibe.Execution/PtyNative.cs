using System.Runtime.InteropServices;

namespace Covibe.Execution;

/// <summary>libc calls for pseudo-terminals. Linux (x86-64 and arm64) constants.</summary>
internal static unsafe partial class PtyNative
{
    public const int O_RDWR = 0x2;
    public const int O_NOCTTY = 0x100;
    public const int O_CLOEXEC = 0x80000;
    public const nuint TIOCSWINSZ = 0x5414;
    public const nuint TIOCGWINSZ = 0x5413;
    public const short POSIX_SPAWN_SETSIGDEF = 0x04;
    public const short POSIX_SPAWN_SETSIGMASK = 0x08;
    public const short POSIX_SPAWN_SETSID = 0x80;
    public const int WNOHANG = 1;
    public const short POLLIN = 0x1;
    public const short POLLOUT = 0x4;
    public const int F_GETFL = 3;
    public const int F_SETFL = 4;
    public const int O_NONBLOCK = 0x800;
    public const int EINTR = 4;
    public const int EAGAIN = 11;
    public const int EIO = 5;
    public const int ECHILD = 10;

    // glibc's opaque types are smaller than these (sigset_t 128, posix_spawnattr_t 336,
    // posix_spawn_file_actions_t 80 bytes); we allocate generously and let libc initialise them.
    public const int OpaqueSize = 1024;

    [StructLayout(LayoutKind.Sequential)]
    public struct WinSize
    {
        public ushort Rows;
        public ushort Cols;
        public ushort XPixel;
        public ushort YPixel;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short REvents;
    }

    // int posix_openpt(int flags);
    [LibraryImport("libc", EntryPoint = "posix_openpt", SetLastError = true)]
    public static partial int PosixOpenPt(int flags);

    // int grantpt(int fd);
    [LibraryImport("libc", EntryPoint = "grantpt", SetLastError = true)]
    public static partial int GrantPt(int fd);

    // int unlockpt(int fd);
    [LibraryImport("libc", EntryPoint = "unlockpt", SetLastError = true)]
    public static partial int UnlockPt(int fd);

    // int ptsname_r(int fd, char *buf, size_t buflen);  (returns an error number)
    [LibraryImport("libc", EntryPoint = "ptsname_r")]
    public static partial int PtsNameR(int fd, byte* buffer, nuint length);

    // int ioctl(int fd, unsigned long request, struct winsize *);
    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, nuint request, WinSize* size);

    // int sigemptyset(sigset_t *set); int sigfillset(sigset_t *set);
    [LibraryImport("libc", EntryPoint = "sigemptyset")]
    public static partial int SigEmptySet(void* set);

    [LibraryImport("libc", EntryPoint = "sigfillset")]
    public static partial int SigFillSet(void* set);

    // int posix_spawnattr_init(posix_spawnattr_t *attr); ..._destroy; ..._setflags(attr, short flags);
    [LibraryImport("libc", EntryPoint = "posix_spawnattr_init")]
    public static partial int SpawnAttrInit(void* attr);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_destroy")]
    public static partial int SpawnAttrDestroy(void* attr);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_setflags")]
    public static partial int SpawnAttrSetFlags(void* attr, short flags);

    // int posix_spawnattr_setsigmask(posix_spawnattr_t *attr, const sigset_t *sigmask);
    [LibraryImport("libc", EntryPoint = "posix_spawnattr_setsigmask")]
    public static partial int SpawnAttrSetSigMask(void* attr, void* set);

    // int posix_spawnattr_setsigdefault(posix_spawnattr_t *attr, const sigset_t *sigdefault);
    [LibraryImport("libc", EntryPoint = "posix_spawnattr_setsigdefault")]
    public static partial int SpawnAttrSetSigDefault(void* attr, void* set);

    // int posix_spawn_file_actions_init(posix_spawn_file_actions_t *fa); ..._destroy
    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_init")]
    public static partial int FileActionsInit(void* actions);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_destroy")]
    public static partial int FileActionsDestroy(void* actions);

    // int posix_spawn_file_actions_addopen(fa, int fd, const char *path, int oflag, mode_t mode);
    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_addopen")]
    public static partial int FileActionsAddOpen(void* actions, int fd, byte* path, int flags, uint mode);

    // int posix_spawn_file_actions_adddup2(fa, int fd, int newfd);
    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_adddup2")]
    public static partial int FileActionsAddDup2(void* actions, int fd, int newFd);

    // int posix_spawn_file_actions_addchdir_np(fa, const char *path);  (glibc 2.29+)
    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_addchdir_np")]
    public static partial int FileActionsAddChdir(void* actions, byte* path);

    // int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
    //                  const posix_spawnattr_t *attr, char *const argv[], char *const envp[]);
    [LibraryImport("libc", EntryPoint = "posix_spawnp")]
    public static partial int SpawnP(int* pid, byte* file, void* actions, void* attr, byte** argv, byte** envp);

    // pid_t waitpid(pid_t pid, int *wstatus, int options);
    [LibraryImport("libc", EntryPoint = "waitpid", SetLastError = true)]
    public static partial int WaitPid(int pid, int* status, int options);

    // ssize_t read(int fd, void *buf, size_t count);
    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, byte* buffer, nint count);

    // ssize_t write(int fd, const void *buf, size_t count);
    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, byte* buffer, nint count);

    // int close(int fd);
    // pid_t tcgetsid(int fd);
    [LibraryImport("libc", EntryPoint = "tcgetsid", SetLastError = true)]
    public static partial int TcGetSid(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    // int fcntl(int fd, int cmd, int arg);
    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    public static partial int Fcntl(int fd, int command, int argument);

    // int poll(struct pollfd *fds, nfds_t nfds, int timeout);
    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, nuint count, int timeoutMs);

    // char *realpath(const char *path, char *resolved_path);  (NULL: malloc'd result)
    [LibraryImport("libc", EntryPoint = "realpath", StringMarshalling = StringMarshalling.Utf8)]
    public static partial nint RealPath(string path, nint resolved);

    // void free(void *ptr);
    [LibraryImport("libc", EntryPoint = "free")]
    public static partial void Free(nint pointer);
}
