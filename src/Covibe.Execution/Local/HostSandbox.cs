using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Covibe.Execution.Egress;

namespace Covibe.Execution.Local;

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
    private readonly SandboxNetworking _networking;
    private readonly IReadOnlyList<string> _blockedRoutes;

    /// <param name="bwrap">The bubblewrap program.</param>
    /// <param name="readOnlyPaths">More directories of this machine the sandbox sees, read-only at the same path (tools the agents need).</param>
    /// <param name="identityDirectory">A directory of the server's where the sandbox's own <c>passwd</c> and <c>group</c> are written.</param>
    /// <param name="runAs">The user and group programs run as when the server is root (ignored otherwise: then they run as the server's user, in its user namespace).</param>
    /// <param name="networking">What network sandboxed programs get (<see cref="SandboxNetworking.Internet"/> needs root here).</param>
    /// <param name="blockedRoutes">With <see cref="SandboxNetworking.Internet"/>: the routes blackholed inside (<see cref="SandboxNetwork.BlockedRoutes"/>).</param>
    public HostSandbox(string bwrap, IReadOnlyList<string> readOnlyPaths, string identityDirectory, (uint Uid, uint Gid) runAs,
        SandboxNetworking networking = SandboxNetworking.Host, IReadOnlyList<string>? blockedRoutes = null)
    {
        _bwrap = bwrap;
        _readOnlyPaths = readOnlyPaths;
        _identityDirectory = identityDirectory;
        _networking = networking;
        _blockedRoutes = blockedRoutes ?? [];
        IsRoot = Native.GetEuid() == 0;
        User = IsRoot ? runAs : (Native.GetEuid(), GetEgid());
        WriteIdentity();
    }

    /// <summary>Whether sandboxed programs have a network namespace of their own (then a service of theirs is reached through a Unix socket, not this machine's loopback).</summary>
    public bool IsolatesNetwork => _networking == SandboxNetworking.Internet;

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
    /// <param name="cgroups">The <c>cgroup.procs</c> files of the group the sandbox joins before it starts (its team's, <see cref="TeamCgroups.Enter"/>).</param>
    /// <param name="egress">The team's egress policy, when it is restricted: enforced in the sandbox's network namespace.</param>
    public List<string> Wrap(IReadOnlyList<string> argv, IReadOnlyList<SandboxMount> mounts, string workingDirectory, bool dieWithParent = false,
        IReadOnlyList<string>? cgroups = null, TeamEgress? egress = null)
    {
        if (egress is { Policy.Restricted: true } && !IsolatesNetwork)
        {
            throw new EgressNotEnforcedException(egress.TeamId);
        }
        var wrapped = Bubblewrap(argv, mounts, workingDirectory, dieWithParent, IsolatesNetwork);
        if (IsolatesNetwork)
        {
            // The launcher connects the new network namespace before the program runs (SandboxNetwork).
            var handshake = Path.Combine(_identityDirectory, "net", Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(handshake, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            if (egress is { Policy.Restricted: true })
            {
                File.WriteAllText(Path.Combine(handshake, "egress"), EgressRules.Sandbox(egress));
                File.WriteAllText(Path.Combine(handshake, "source"), egress.SandboxSource.ToString());
            }
            wrapped = ["sh", "-c", SandboxNetwork.Script, SandboxNetwork.ProgramName, handshake, .. _blockedRoutes, "--", .. wrapped];
        }
        if (cgroups is { Count: > 0 })
        {
            // First of all, with the server's privileges: the launcher joins the group, and everything it starts stays in it.
            wrapped = ["sh", "-c", JoinScript, "covibe-limits", .. cgroups, "--", .. wrapped];
        }
        return wrapped;
    }

    /// <summary>
    /// <paramref name="shell"/> on a terminal in the sandbox, starting in <paramref name="workingDirectory"/> (a path inside
    /// it), at home in <paramref name="home"/>: it leads a session of its own in there (<c>setsid --ctty</c>, the terminal
    /// its controlling one) so job control works in the sandbox's PID namespace, and everything inside ends with it.
    /// </summary>
    public PtyStartInfo WrapShell(PtyStartInfo shell, IReadOnlyList<SandboxMount> mounts, string workingDirectory, string home,
        IReadOnlyList<string>? cgroups = null, TeamEgress? egress = null)
    {
        var argv = Wrap(["setsid", "--ctty", "--wait", shell.Program, .. shell.Arguments], mounts, workingDirectory, dieWithParent: true, cgroups, egress);
        return shell with
        {
            Program = argv[0],
            Arguments = argv[1..],
            WorkingDirectory = "/",
            Environment = Isolated.AsUser(shell.Environment, home),
            ControllingTerminalInside = true,
        };
    }

    /// <summary>Writes its own PID into each <c>cgroup.procs</c> given before <c>--</c>, then becomes the rest (the same PID).</summary>
    private const string JoinScript = """while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@" """;

    private List<string> Bubblewrap(IReadOnlyList<string> argv, IReadOnlyList<SandboxMount> mounts, string workingDirectory, bool dieWithParent, bool isolate)
    {
        List<string> args =
        [
            _bwrap,
            "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--hostname", "covibe",
            "--ro-bind", "/usr", "/usr",
        ];
        if (isolate)
        {
            args.AddRange(["--unshare-net", "--info-fd", "3", "--block-fd", "4"]);
        }
        else if (_networking == SandboxNetworking.None)
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
        foreach (var entry in EtcEntries.Where(e => !isolate || e != "resolv.conf"))
        {
            args.AddRange(["--ro-bind-try", "/etc/" + entry, "/etc/" + entry]);
        }
        if (isolate)
        {
            // This machine's resolver may be on an address the sandbox cannot reach: slirp4netns answers DNS.
            args.AddRange(["--ro-bind", Path.Combine(_identityDirectory, "resolv.conf"), "/etc/resolv.conf"]);
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
            // A repository shown at its own path (an agent's work tree borrows it): its parents passable, as above.
            foreach (var parent in mount.Writable ? [] : Ancestors(mount.Destination))
            {
                args.AddRange(["--perms", "0755", "--dir", parent]);
            }
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
        if (IsolatesNetwork && SandboxNetwork.MissingPrograms() is { Count: > 0 } missing)
        {
            return $"its network needs {string.Join(", ", missing)} (apt-get install slirp4netns iproute2 util-linux)";
        }
        // The whole way a program starts, its network included.
        try
        {
            var (exitCode, error) = Run(["true"], [], "/");
            return exitCode == 0 ? null : $"bubblewrap fails here (exit {exitCode}): {error.Trim()}";
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return $"bubblewrap cannot be run: {e.Message}";
        }
    }

    /// <summary>Runs <paramref name="argv"/> in the sandbox to its end (a short check): its exit code and what it wrote to stderr.</summary>
    public (int ExitCode, string Error) Run(IReadOnlyList<string> argv, IReadOnlyList<SandboxMount> mounts, string workingDirectory)
    {
        var wrapped = Wrap(argv, mounts, workingDirectory);
        // Only stderr is read (a check prints nothing on stdout, which is left as it is): no pipe fills unread.
        var info = new ProcessStartInfo(wrapped[0]) { RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in wrapped.Skip(1))
        {
            info.ArgumentList.Add(arg);
        }
        using var process = Process.Start(info)!;
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, error);
    }

    /// <summary>
    /// Runs a short look at files in the sandbox, with no network at all (an agent's changes), as <see cref="ShortProcess.RunAsync"/>.
    /// </summary>
    public Task<(int ExitCode, string Stdout, string Stderr)> RunOfflineAsync(IReadOnlyList<string> argv, IReadOnlyList<SandboxMount> mounts,
        string workingDirectory, IReadOnlyDictionary<string, string> environment, int maxOutput, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var wrapped = Bubblewrap(argv, mounts, workingDirectory, dieWithParent: true, isolate: false);
        wrapped.Insert(1, "--unshare-net");
        return ShortProcess.RunAsync(wrapped, environment, maxOutput, timeout, cancellationToken);
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
        File.WriteAllText(Path.Combine(_identityDirectory, "resolv.conf"), $"nameserver {SandboxNetwork.NameServer}\n");
        var (uid, gid) = (Str(User.Uid), Str(User.Gid));
        File.WriteAllText(Path.Combine(_identityDirectory, "passwd"),
            $"root:x:0:0:root:/root:/bin/sh\ncovibe:x:{uid}:{gid}:Covibe member:{Isolated.Workspace}:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
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
