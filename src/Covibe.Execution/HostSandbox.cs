using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Covibe.Execution;

/// <summary>A directory of this machine that a sandboxed program sees at <see cref="Destination"/>.</summary>
public sealed record SandboxMount(string Source, string Destination, bool Writable);

/// <summary>
/// Runs members' programs (agents, terminals) on this machine inside a bubblewrap sandbox: their
/// own PID, IPC and mount namespaces, a root built from the system's programs (<c>/usr</c> and a
/// short list of <c>/etc</c>, read-only), a private <c>/tmp</c>, and only the directories they are
/// given. The server's data directory, its process and every other team's files do not exist in
/// there. When the server runs as root, the program also runs as an unprivileged user with no
/// capabilities (<c>setpriv</c>), so even what it can see it cannot change unless it is its own.
/// </summary>
public sealed class HostSandbox
{
    /// <summary>Where the team's workspace appears inside the sandbox.</summary>
    public const string Workspace = "/workspace";

    /// <summary>Where an agent's runtime directory (FIFO, log, exit code) appears inside the sandbox.</summary>
    public const string Runtime = "/covibe";

    private static readonly string[] EtcEntries =
    [
        "alternatives", "ssl", "ca-certificates", "ca-certificates.conf", "resolv.conf", "hosts", "host.conf", "gai.conf",
        "nsswitch.conf", "localtime", "timezone", "shells", "profile", "profile.d", "bash.bashrc", "inputrc", "terminfo",
        "gitconfig", "vim", "mime.types", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "os-release", "debian_version",
        "protocols", "services", "magic", "manpath.config",
    ];

    private readonly string _bwrap;
    private readonly IReadOnlyList<string> _readOnlyPaths;
    private readonly string _identityDirectory;
    private readonly bool _shareNetwork;

    /// <param name="bwrap">The bubblewrap program.</param>
    /// <param name="readOnlyPaths">More directories of this machine the sandbox sees, read-only at the same path (tools the agents need).</param>
    /// <param name="identityDirectory">A directory of the server's where the sandbox's own <c>passwd</c> and <c>group</c> are written.</param>
    /// <param name="runAs">The user and group programs run as when the server is root (ignored otherwise: then they run as the server's user, in its user namespace).</param>
    /// <param name="shareNetwork">False: no network at all inside (only loopback of its own).</param>
    public HostSandbox(string bwrap, IReadOnlyList<string> readOnlyPaths, string identityDirectory, (uint Uid, uint Gid) runAs, bool shareNetwork = true)
    {
        _bwrap = bwrap;
        _readOnlyPaths = readOnlyPaths;
        _identityDirectory = identityDirectory;
        _shareNetwork = shareNetwork;
        IsRoot = Native.GetEuid() == 0;
        User = IsRoot ? runAs : (Native.GetEuid(), GetEgid());
        WriteIdentity();
    }

    /// <summary>Whether the server runs as root (and so drops sandboxed programs to <see cref="User"/>).</summary>
    public bool IsRoot { get; }

    /// <summary>Who sandboxed programs run as.</summary>
    public (uint Uid, uint Gid) User { get; }

    /// <summary>The bubblewrap program on the PATH, or null.</summary>
    public static string? FindBubblewrap() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Append("/usr/bin").Select(dir => Path.Combine(dir, "bwrap")).FirstOrDefault(File.Exists);

    /// <summary>The argv that runs <paramref name="argv"/> in the sandbox, starting in <paramref name="workingDirectory"/> (a path inside it).</summary>
    /// <param name="dieWithParent">Everything inside ends when the process started goes (a terminal; never an agent, which outlives the server).</param>
    public List<string> Wrap(IReadOnlyList<string> argv, IReadOnlyList<SandboxMount> mounts, string workingDirectory, bool dieWithParent = false)
    {
        List<string> args =
        [
            _bwrap,
            "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--hostname", "covibe",
            "--ro-bind", "/usr", "/usr",
        ];
        if (!_shareNetwork)
        {
            args.Add("--unshare-net");
        }
        if (dieWithParent)
        {
            args.Add("--die-with-parent");
        }
        foreach (var top in (string[])["bin", "sbin", "lib", "lib32", "lib64", "libx32"])
        {
            var path = "/" + top;
            var info = new FileInfo(path);
            if (info.LinkTarget is { } target)
            {
                args.AddRange(["--symlink", target, path]);
            }
            else if (Directory.Exists(path))
            {
                args.AddRange(["--ro-bind", path, path]);
            }
        }
        // Directories bubblewrap makes for mount points are owner-only unless told otherwise.
        args.AddRange(["--perms", "0755", "--dir", "/etc", "--perms", "0755", "--dir", "/var"]);
        foreach (var entry in EtcEntries)
        {
            args.AddRange(["--ro-bind-try", "/etc/" + entry, "/etc/" + entry]);
        }
        args.AddRange(["--ro-bind", Path.Combine(_identityDirectory, "passwd"), "/etc/passwd"]);
        args.AddRange(["--ro-bind", Path.Combine(_identityDirectory, "group"), "/etc/group"]);
        args.AddRange(["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp", "--perms", "1777", "--tmpfs", "/var/tmp"]);
        foreach (var path in _readOnlyPaths.Where(p => Directory.Exists(p) && !p.StartsWith("/usr/", StringComparison.Ordinal)))
        {
            // bubblewrap would make the missing parents owner-only: the sandbox user could not pass through them.
            foreach (var parent in Ancestors(path))
            {
                args.AddRange(["--perms", "0755", "--dir", parent]);
            }
            args.AddRange(["--ro-bind", path, path]);
        }
        foreach (var mount in mounts)
        {
            args.AddRange([mount.Writable ? "--bind" : "--ro-bind", mount.Source, mount.Destination]);
        }
        args.AddRange(["--chdir", workingDirectory, "--"]);
        if (IsRoot)
        {
            // Root inside the sandbox would still be root on this machine's files: drop to the sandbox user, for good.
            args.AddRange(["setpriv", $"--reuid={Str(User.Uid)}", $"--regid={Str(User.Gid)}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]);
        }
        args.AddRange(argv);
        return args;
    }

    /// <summary>Makes <paramref name="path"/> belong to the sandbox's user, so sandboxed programs may write there.</summary>
    public void GiveToSandbox(string path)
    {
        if (IsRoot && Native.LChown(path, User.Uid, User.Gid) != 0)
        {
            throw new IOException($"Cannot give {path} to the sandbox user (errno {Marshal.GetLastPInvokeError()}).");
        }
    }

    /// <summary>Runs <c>true</c> in an empty sandbox: null if it works here, else what went wrong (e.g. user namespaces disabled).</summary>
    public string? Check()
    {
        var info = new ProcessStartInfo(_bwrap) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var arg in Wrap(["true"], [], "/").Skip(1))
        {
            info.ArgumentList.Add(arg);
        }
        try
        {
            using var process = Process.Start(info)!;
            var error = process.StandardError.ReadToEnd();
            process.WaitForExit();
            return process.ExitCode == 0 ? null : $"bubblewrap fails here (exit {process.ExitCode}): {error.Trim()}";
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return $"bubblewrap cannot be run: {e.Message}";
        }
    }

    /// <summary>/a, /a/b for /a/b/c.</summary>
    private static IEnumerable<string> Ancestors(string path)
    {
        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        for (var i = 1; i < parts.Length; i++)
        {
            yield return "/" + string.Join('/', parts[..i]);
        }
    }

    private void WriteIdentity()
    {
        Directory.CreateDirectory(_identityDirectory);
        var (uid, gid) = (Str(User.Uid), Str(User.Gid));
        File.WriteAllText(Path.Combine(_identityDirectory, "passwd"),
            $"root:x:0:0:root:/root:/bin/sh\ncovibe:x:{uid}:{gid}:Covibe member:{Workspace}:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
        File.WriteAllText(Path.Combine(_identityDirectory, "group"), $"root:x:0:\ncovibe:x:{gid}:\nnogroup:x:65534:\n");
        foreach (var file in (string[])["passwd", "group"])
        {
            File.SetUnixFileMode(Path.Combine(_identityDirectory, file), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }
    }

    private static uint GetEgid() => uint.Parse(
        File.ReadLines("/proc/self/status").First(l => l.StartsWith("Gid:", StringComparison.Ordinal)).Split('\t', StringSplitOptions.RemoveEmptyEntries)[2],
        CultureInfo.InvariantCulture);

    private static string Str(uint value) => value.ToString(CultureInfo.InvariantCulture);
}
