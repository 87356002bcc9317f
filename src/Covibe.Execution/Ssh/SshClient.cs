using System.Diagnostics;
using System.Text;

namespace Covibe.Execution.Ssh;

/// <summary>
/// How to reach one machine over SSH. A key credential is never part of it (keys live in the
/// agent); a password, for machines that only take one, is held here in memory only.
/// </summary>
public sealed record SshTarget(string Id, string Host, int Port, string User, string KnownHosts)
{
    public string? Password { get; init; }

    /// <summary>
    /// The public half of the key this target logs in with (from <see cref="SshClient.AddKeyAsync"/>): ssh offers that key
    /// alone, never the other keys the agent holds for other members' VMs.
    /// </summary>
    public string? PublicKey { get; init; }

    // Records print every property; this one must never reach a log.
    public override string ToString() => $"{User}@{Host}:{Port}";
}

/// <summary>What a remote command printed, and how it ended.</summary>
public sealed record SshResult(int ExitCode, string Stdout, string Stderr);

/// <summary>
/// The system OpenSSH client driven as a process (no managed SSH library restores here). One
/// <c>ssh-agent</c> owned by the server holds the decrypted private keys, fed through stdin and
/// with a lifetime, so keys never touch the disk. Connections are reused through ControlMaster
/// sockets in a 0700 directory; host keys are pinned (StrictHostKeyChecking=yes against the known
/// hosts the owner confirmed). Remote commands are built from argv with every argument quoted,
/// so no value can inject shell syntax on either side.
/// </summary>
public sealed class SshClient : IAsyncDisposable
{
    private readonly string _directory;
    private readonly SemaphoreSlim _agentLock = new(1, 1);
    private Process? _agent;

    public SshClient(string directory)
    {
        _directory = directory;
        Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    private string AgentSocket => Path.Combine(_directory, "agent.sock");

    /// <summary>
    /// Gives a private key to the agent (from memory, through stdin) for <paramref name="lifetime"/>, and answers its public
    /// key (<c>ssh-keygen -y</c>, also from stdin) for <see cref="SshTarget.PublicKey"/>.
    /// </summary>
    public async Task<string> AddKeyAsync(ReadOnlyMemory<byte> privateKey, TimeSpan lifetime, CancellationToken cancellationToken)
    {
        await EnsureAgentAsync(cancellationToken);
        var (_, _, added) = await PipeAsync("ssh-add", ["-q", "-t", ((int)lifetime.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture), "-"], privateKey, cancellationToken);
        if (added is not null)
        {
            throw new SshException($"The private key was not accepted: {added}");
        }
        var (publicKey, _, failed) = await PipeAsync("ssh-keygen", ["-y", "-f", "/dev/stdin"], privateKey, cancellationToken);
        return failed is null ? publicKey.Trim() : throw new SshException($"The private key was not accepted: {failed}");
    }

    /// <summary>
    /// The environment a local <c>git</c> needs to reach a repository over SSH with <paramref name="privateKey"/> (given to the
    /// agent from memory, offered alone) against the pinned <paramref name="knownHosts"/>: <c>GIT_SSH_COMMAND</c> and the
    /// agent's socket, and the key's public half. Only public material is written (the public key, the known hosts);
    /// <paramref name="id"/> names them.
    /// </summary>
    public async Task<(IReadOnlyDictionary<string, string> Environment, string PublicKey)> GitEnvironmentAsync(string id, ReadOnlyMemory<byte> privateKey, string knownHosts, CancellationToken cancellationToken)
    {
        var publicKey = await AddKeyAsync(privateKey, TimeSpan.FromHours(1), cancellationToken);
        var name = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes($"git\n{id}\n{publicKey}\n{knownHosts}")))[..24];
        var knownHostsFile = Path.Combine(_directory, $"known_hosts-{name}");
        var identity = Path.Combine(_directory, $"id-{name}.pub");
        await File.WriteAllTextAsync(knownHostsFile, knownHosts + "\n", cancellationToken);
        await File.WriteAllTextAsync(identity, publicKey + "\n", cancellationToken);
        return (new Dictionary<string, string>(StringComparer.Ordinal)
        {
            // git runs it through sh with the host (and -p port) after it: every word quoted.
            ["GIT_SSH_COMMAND"] = ShellWords.Join(["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                "-o", $"UserKnownHostsFile={knownHostsFile}", "-o", "GlobalKnownHostsFile=/dev/null", "-o", $"IdentityAgent={AgentSocket}",
                "-o", "IdentitiesOnly=yes", "-o", $"IdentityFile={identity}", "-o", "PasswordAuthentication=no", "-o", "ConnectTimeout=10",
                "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=2"]),
            ["SSH_AUTH_SOCK"] = AgentSocket,
        }, publicKey);
    }

    /// <summary>Runs a local OpenSSH tool with <paramref name="input"/> on its stdin: its output, and its error text if it failed.</summary>
    private async Task<(string Stdout, int ExitCode, string? Error)> PipeAsync(string tool, string[] args, ReadOnlyMemory<byte> input, CancellationToken cancellationToken)
    {
        var info = Start(tool, args);
        info.RedirectStandardInput = true;
        using var process = Process.Start(info) ?? throw new IOException($"Could not run {tool}; install openssh-client.");
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.StandardInput.BaseStream.WriteAsync(input, cancellationToken);
        process.StandardInput.Close();
        await process.WaitForExitAsync(cancellationToken);
        return (await stdout, process.ExitCode, process.ExitCode == 0 ? null : (await stderr).Trim());
    }

    /// <summary>Runs <paramref name="argv"/> on the target (quoted for the remote shell) and collects its output.</summary>
    public async Task<SshResult> RunAsync(SshTarget target, IReadOnlyList<string> argv, ReadOnlyMemory<byte>? stdin, TimeSpan timeout, CancellationToken cancellationToken)
    {
        await EnsureAgentAsync(cancellationToken);
        var info = Start("ssh", [.. Options(target), "--", target.Host, ShellWords.Join(argv)]);
        UsePassword(info, target);
        info.RedirectStandardInput = true;
        using var process = Process.Start(info) ?? throw new IOException("Could not run ssh; install openssh-client.");
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        var stdout = process.StandardOutput.ReadToEndAsync(limit.Token);
        var stderr = process.StandardError.ReadToEndAsync(limit.Token);
        try
        {
            if (stdin is { } input)
            {
                await process.StandardInput.BaseStream.WriteAsync(input, limit.Token);
            }
            process.StandardInput.Close();
            await process.WaitForExitAsync(limit.Token);
            return new SshResult(process.ExitCode, await stdout, await stderr);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            process.Kill(entireProcessTree: true);
            throw new SshException($"{target.Host}:{target.Port} did not answer within {timeout.TotalSeconds:0} s.");
        }
    }

    /// <summary>Starts a long-running remote command whose stdout the caller reads (e.g. <c>tail -F</c>).</summary>
    public async Task<Process> StreamAsync(SshTarget target, IReadOnlyList<string> argv, CancellationToken cancellationToken)
    {
        await EnsureAgentAsync(cancellationToken);
        var info = Start("ssh", [.. Options(target), "--", target.Host, ShellWords.Join(argv)]);
        UsePassword(info, target);
        info.RedirectStandardInput = true;
        var process = Process.Start(info) ?? throw new IOException("Could not run ssh; install openssh-client.");
        process.StandardInput.Close();
        return process;
    }

    /// <summary>
    /// What to run on a local PTY for an interactive shell on the target: <c>ssh -tt</c> over the
    /// shared connection, so the remote side gets a terminal of its own (size changes follow,
    /// Ctrl-C reaches its programs). Only the variables ssh needs go into its environment.
    /// </summary>
    public async Task<PtyStartInfo> InteractiveAsync(SshTarget target, IReadOnlyList<string> argv, int columns, int rows, CancellationToken cancellationToken)
    {
        await EnsureAgentAsync(cancellationToken);
        var info = Start("ssh", [.. Options(target), "-tt", "--", target.Host, ShellWords.Join(argv)]);
        UsePassword(info, target);
        var environment = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["PATH"] = "/usr/local/bin:/usr/bin:/bin",
            ["HOME"] = Environment.GetEnvironmentVariable("HOME") ?? _directory,
            ["TERM"] = "xterm-256color",
            ["LANG"] = "C.UTF-8",
        };
        foreach (var name in (string[])["SSH_AUTH_SOCK", "SSH_ASKPASS", "SSH_ASKPASS_REQUIRE", "COVIBE_SSH_PASSWORD"])
        {
            if (info.Environment.TryGetValue(name, out var value) && value is not null)
            {
                environment[name] = value;
            }
        }
        return new PtyStartInfo(info.FileName, [.. info.ArgumentList], _directory, environment, columns, rows);
    }

    /// <summary>Ends the shared connection to a target (the next command opens a new one).</summary>
    public async Task CloseAsync(SshTarget target, CancellationToken cancellationToken)
    {
        using var process = Process.Start(Start("ssh", [.. Options(target), "-O", "exit", "--", target.Host]))!;
        await process.WaitForExitAsync(cancellationToken);
    }

    /// <summary>What an ssh failure means for the user.</summary>
    public static string Explain(SshResult result, SshTarget target)
    {
        var error = result.Stderr;
        if (error.Contains("REMOTE HOST IDENTIFICATION HAS CHANGED", StringComparison.Ordinal) || error.Contains("Host key verification failed", StringComparison.Ordinal))
        {
            return $"The host key of {target.Host}:{target.Port} is not the one you confirmed. If the VM was rebuilt, confirm its new key with `covibe vm update --host-key`; otherwise someone may be in the middle.";
        }
        if (error.Contains("Permission denied", StringComparison.Ordinal))
        {
            return $"{target.User}@{target.Host} refused the credential. Check the user and that the key is in its authorized_keys.";
        }
        if (error.Contains("Connection refused", StringComparison.Ordinal) || error.Contains("timed out", StringComparison.Ordinal) || error.Contains("No route", StringComparison.Ordinal))
        {
            return $"Cannot connect to {target.Host}:{target.Port}: {error.Trim()}";
        }
        return error.Trim().Length > 0 ? error.Trim() : $"ssh exited with {result.ExitCode}.";
    }

    /// <summary>
    /// For a password machine: ssh asks a tiny askpass script, which answers from an environment
    /// variable of that ssh process only (never a file, never an argument). Once the shared
    /// connection stands, later commands do not ask again.
    /// </summary>
    private void UsePassword(ProcessStartInfo info, SshTarget target)
    {
        if (target.Password is null)
        {
            return;
        }
        var askpass = Path.Combine(_directory, "askpass");
        if (!File.Exists(askpass))
        {
            File.WriteAllText(askpass, "#!/bin/sh\nprintf '%s\\n' \"$COVIBE_SSH_PASSWORD\"\n");
            File.SetUnixFileMode(askpass, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        info.Environment["SSH_ASKPASS"] = askpass;
        info.Environment["SSH_ASKPASS_REQUIRE"] = "force";
        info.Environment["COVIBE_SSH_PASSWORD"] = target.Password;
        var batch = info.ArgumentList.IndexOf("BatchMode=yes");
        info.ArgumentList[batch] = "BatchMode=no";
        info.ArgumentList.Insert(batch + 1, "-o");
        info.ArgumentList.Insert(batch + 2, "NumberOfPasswordPrompts=1");
    }

    private List<string> Options(SshTarget target)
    {
        // One shared connection per target, credential and pinned host key, never per host: two members' VMs on the same host
        // and user, or a VM whose key or host key was just changed, must not ride on a connection opened otherwise.
        var id = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(
            $"{target.Id}\n{target.User}\n{target.Host}\n{target.Port}\n{target.PublicKey}\n{target.Password}\n{target.KnownHosts}")))[..24];
        var knownHosts = Path.Combine(_directory, $"known_hosts-{id}");
        File.WriteAllText(knownHosts, target.KnownHosts + "\n");
        List<string> options =
        [
            "-p", target.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-l", target.User,
            "-F", "/dev/null",
            "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes",
            "-o", $"UserKnownHostsFile={knownHosts}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", $"IdentityAgent={AgentSocket}",
            "-o", "ControlMaster=auto",
            "-o", $"ControlPath={_directory}/cm-{id}",
            "-o", "ControlPersist=120",
            "-o", "ConnectTimeout=10",
            "-o", "ServerAliveInterval=15",
            "-o", "ServerAliveCountMax=2",
            // Only this target's own credential: the agent holds every member's keys.
            "-o", "IdentitiesOnly=yes",
        ];
        if (target.PublicKey is { } publicKey)
        {
            var file = Path.Combine(_directory, $"id-{id}.pub");
            File.WriteAllText(file, publicKey + "\n");
            options.AddRange(["-o", $"IdentityFile={file}"]);
        }
        else
        {
            options.AddRange(["-o", "PubkeyAuthentication=no"]);
        }
        return options;
    }

    /// <summary>The name known_hosts lines use for a host on a non-standard port.</summary>
    public static string KnownHostsName(SshTarget target) => target.Port == 22 ? target.Host : $"[{target.Host}]:{target.Port}";

    private ProcessStartInfo Start(string file, IEnumerable<string> args)
    {
        var info = new ProcessStartInfo(file)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }
        info.Environment["SSH_AUTH_SOCK"] = AgentSocket;
        return info;
    }

    private async Task EnsureAgentAsync(CancellationToken cancellationToken)
    {
        await _agentLock.WaitAsync(cancellationToken);
        try
        {
            if (_agent is { HasExited: false })
            {
                return;
            }
            File.Delete(AgentSocket);
            // -D: stay in the foreground as our child, so it ends with us.
            _agent = Process.Start(Start("ssh-agent", ["-D", "-a", AgentSocket])) ?? throw new IOException("Could not run ssh-agent; install openssh-client.");
            // The socket file appears at bind(), a moment before the agent listens: wait until it answers.
            for (var i = 0; i < 200 && !await AnswersAsync(AgentSocket, cancellationToken); i++)
            {
                await Task.Delay(10, cancellationToken);
            }
        }
        finally
        {
            _agentLock.Release();
        }
    }

    private static async Task<bool> AnswersAsync(string path, CancellationToken cancellationToken)
    {
        if (!File.Exists(path))
        {
            return false;
        }
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(path), cancellationToken);
            return true;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_agent is { HasExited: false })
        {
            _agent.Kill();
            await _agent.WaitForExitAsync();
        }
        _agent?.Dispose();
        _agentLock.Dispose();
    }
}

public sealed class SshException(string message) : Exception(message);
