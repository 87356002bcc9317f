using Covibe.Web;
using System.Text;
using System.Text.RegularExpressions;
using Covibe.Execution;
using Covibe.Protocol;

namespace Covibe.Terminals;

/// <summary>A request refused for a reason the client can fix: <see cref="Code"/> is a <see cref="TerminalErrorCodes"/> value.</summary>
public sealed class TerminalException(string code, string message) : Exception(message)
{
    public string Code { get; } = code;
}

/// <summary>
/// What a session runs, and where: <see cref="Host"/> names a VM, null for this machine.
/// <see cref="CommandDirectory"/> turns the <c>cwd</c> of a <c>command</c> message into the path the
/// shell sees (throwing <see cref="TerminalException"/> for one it may not use). <see cref="Open"/>
/// starts the terminal somewhere other than a local PTY running <see cref="Info"/> (a container).
/// </summary>
public sealed record TerminalStart(PtyStartInfo Info, Func<string, string> CommandDirectory, string? Host = null, Func<CancellationToken, Task<IPty>>? Open = null);

/// <summary>What a new session runs: a local shell (<see cref="TerminalLaunch"/>), or in <c>covibe serve</c> also a shell on a member's VM.</summary>
public interface ITerminalLauncher
{
    /// <summary>Throws <see cref="TerminalException"/> for a config the client can fix.</summary>
    Task<TerminalStart> StartInfoAsync(TerminalUser user, string sessionId, TerminalConfig? config, CancellationToken cancellationToken);
}

/// <summary>
/// Turns a <c>session create</c> config into what runs: a listed shell, a working directory
/// inside the root, and an environment built from scratch (the server's own variables, and so
/// its secrets, never reach a shell), under resource limits.
/// </summary>
public sealed partial class TerminalLaunch(TerminalOptions options) : ITerminalLauncher
{
    public const int MinSize = 2;
    public const int MaxSize = 1000;
    private const int MaxEnvEntries = 64;
    private const int MaxEnvValueLength = 8192;
    private static readonly string[] RefusedPrefixes = ["LD_", "DYLD_", "BASH_FUNC_"];
    private static readonly HashSet<string> RefusedNames = new(StringComparer.Ordinal) { "BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "PS4", "IFS" };

    public string Root { get; } = ResolveRoot(options.Root);

    public Task<TerminalStart> StartInfoAsync(TerminalUser user, string sessionId, TerminalConfig? config, CancellationToken cancellationToken)
    {
        if (config?.Vm is not null)
        {
            throw new TerminalException(TerminalErrorCodes.InvalidVm, "This server runs terminals on its own machine only; leave 'vm' out.");
        }
        return Task.FromResult(new TerminalStart(Build(config, sessionId), cwd => WorkingDirectory(cwd)));
    }

    public PtyStartInfo Build(TerminalConfig? config, string sessionId, string? root = null)
    {
        var shell = Shell(config?.Shell);
        var cwd = WorkingDirectory(config?.Cwd, root);
        var (cols, rows) = Size(config?.Cols, config?.Rows);
        var environment = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            ["HOME"] = Environment.GetEnvironmentVariable("HOME") ?? Root,
            ["USER"] = Environment.UserName,
            ["LOGNAME"] = Environment.UserName,
            ["SHELL"] = shell,
            ["TERM"] = "xterm-256color",
            ["COLORTERM"] = "truecolor",
            ["LANG"] = "C.UTF-8",
            ["COVIBE_TERMINAL"] = sessionId,
        };
        foreach (var (name, value) in Env(config?.Env))
        {
            environment[name] = value;
        }
        if (File.Exists(PrLimit))
        {
            // Never above what this process may have itself: raising a hard limit would fail, and the shell with it.
            var files = Math.Min(options.MaxOpenFiles, HardLimit("Max open files"));
            var processes = Math.Min(options.MaxProcesses, HardLimit("Max processes"));
            List<string> arguments = [$"--nofile={files}:{files}", $"--nproc={processes}:{processes}", "--core=0:0"];
            if (options.MaxMemoryMiB > 0)
            {
                var bytes = (long)options.MaxMemoryMiB * 1024 * 1024;
                arguments.Add($"--as={bytes}:{bytes}");
            }
            arguments.AddRange(["--", shell]);
            return new PtyStartInfo(PrLimit, arguments, cwd, environment, cols, rows);
        }
        return new PtyStartInfo(shell, [], cwd, environment, cols, rows);
    }

    private const string PrLimit = "/usr/bin/prlimit";

    /// <summary>This process's hard limit from /proc/self/limits (long.MaxValue when unlimited or unknown).</summary>
    private static long HardLimit(string name)
    {
        var line = File.ReadLines("/proc/self/limits").FirstOrDefault(l => l.StartsWith(name, StringComparison.Ordinal));
        var fields = line?[name.Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return fields is { Length: >= 2 } && long.TryParse(fields[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var hard) ? hard : long.MaxValue;
    }

    /// <summary>The shell path, which must be listed in /etc/shells (so a client cannot run an arbitrary program as its "shell").</summary>
    public string Shell(string? requested)
    {
        var shells = File.Exists("/etc/shells")
            ? File.ReadAllLines("/etc/shells").Select(l => l.Trim()).Where(l => l.StartsWith('/')).ToHashSet(StringComparer.Ordinal)
            : [];
        if (string.IsNullOrWhiteSpace(requested))
        {
            return options.DefaultShell ?? (File.Exists("/bin/bash") ? "/bin/bash" : "/bin/sh");
        }
        if (!shells.Contains(requested) || !File.Exists(requested))
        {
            throw new TerminalException(TerminalErrorCodes.InvalidShell,
                $"Shell '{PrintableText.Of(requested, 200)}' is not an installed login shell. Use one listed in /etc/shells, e.g. /bin/bash or /bin/sh, or leave 'shell' out.");
        }
        return requested;
    }

    /// <summary>
    /// A directory inside <paramref name="root"/> (by default <see cref="Root"/>): relative paths are
    /// taken from the root; <c>..</c>, absolute paths and symlinks that lead outside it are refused.
    /// </summary>
    public string WorkingDirectory(string? requested, string? root = null)
    {
        root ??= Root;
        if (string.IsNullOrEmpty(requested))
        {
            return root;
        }
        if (requested.Contains('\0', StringComparison.Ordinal) || requested.Length > 4096)
        {
            throw new TerminalException(TerminalErrorCodes.InvalidCwd, "The working directory is not a valid path.");
        }
        var full = Path.GetFullPath(Path.Combine(root, requested));
        if (!IsInside(full, root))
        {
            throw OutsideRoot(requested, root);
        }
        if (!Directory.Exists(full))
        {
            throw new TerminalException(TerminalErrorCodes.InvalidCwd, $"The working directory '{PrintableText.Of(requested, 200)}' does not exist.");
        }
        var real = RealPath.Resolve(full);
        if (real is null || !IsInside(real, root))
        {
            throw OutsideRoot(requested, root);
        }
        return real;
    }

    public static (int Cols, int Rows) Size(int? cols, int? rows)
    {
        var c = cols ?? 80;
        var r = rows ?? 24;
        if (c is < MinSize or > MaxSize || r is < MinSize or > MaxSize)
        {
            throw new TerminalException(TerminalErrorCodes.InvalidSize, $"cols and rows must be between {MinSize} and {MaxSize}.");
        }
        return (c, r);
    }

    /// <summary>The client's variables, checked: valid names, bounded sizes, and none that change how programs load or shells start.</summary>
    public static IEnumerable<KeyValuePair<string, string>> Env(Dictionary<string, string>? env)
    {
        if (env is null)
        {
            return [];
        }
        if (env.Count > MaxEnvEntries)
        {
            throw new TerminalException(TerminalErrorCodes.InvalidEnv, $"At most {MaxEnvEntries} environment variables may be set.");
        }
        foreach (var (name, value) in env)
        {
            if (!EnvName().IsMatch(name))
            {
                throw new TerminalException(TerminalErrorCodes.InvalidEnv, $"'{PrintableText.Of(name, 200)}' is not a valid environment variable name (letters, digits and _, not starting with a digit).");
            }
            if (RefusedNames.Contains(name) || RefusedPrefixes.Any(p => name.StartsWith(p, StringComparison.Ordinal)))
            {
                throw new TerminalException(TerminalErrorCodes.InvalidEnv, $"The environment variable {name} may not be set: it changes how programs are loaded or how the shell starts.");
            }
            if (value is null || value.Length > MaxEnvValueLength || value.Contains('\0', StringComparison.Ordinal))
            {
                throw new TerminalException(TerminalErrorCodes.InvalidEnv, $"The value of {name} must be text of at most {MaxEnvValueLength} characters.");
            }
        }
        return env;
    }

    /// <summary>
    /// A <c>command</c> with its own cwd or env runs in a subshell, so the session's directory and
    /// variables stay as they were. <paramref name="directory"/> turns the cwd into the path the
    /// shell sees (confined to the root for a shell on this machine; on a member's VM a path there).
    /// </summary>
    public static string CommandLine(string command, string? cwd, Dictionary<string, string>? env, Func<string, string> directory)
    {
        var variables = Env(env).ToList();
        if (cwd is null && variables.Count == 0)
        {
            return command + "\r";
        }
        var line = new StringBuilder("( ");
        if (cwd is not null)
        {
            line.Append("cd -- ").Append(ShellWords.Quote(directory(cwd))).Append(" && ");
        }
        foreach (var (name, value) in variables)
        {
            line.Append("export ").Append(name).Append('=').Append(ShellWords.Quote(value)).Append(" && ");
        }
        return line.Append(command).Append(" )\r").ToString();
    }

    private static TerminalException OutsideRoot(string requested, string root) =>
        new(TerminalErrorCodes.InvalidCwd, $"The working directory '{PrintableText.Of(requested, 200)}' is outside {root}. Give a directory inside it, or a path relative to it.");

    private static bool IsInside(string path, string root) =>
        path == root || path.StartsWith(root.EndsWith('/') ? root : root + "/", StringComparison.Ordinal);

    private static string ResolveRoot(string? configured)
    {
        var root = string.IsNullOrEmpty(configured) ? Environment.GetEnvironmentVariable("HOME") ?? "/" : configured;
        if (!Directory.Exists(root))
        {
            throw new InvalidOperationException($"The terminal root '{root}' does not exist.");
        }
        return RealPath.Resolve(root) ?? throw new InvalidOperationException($"The terminal root '{root}' cannot be resolved.");
    }


    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
    private static partial Regex EnvName();
}
