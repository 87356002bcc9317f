using System.Globalization;
using Covibe.Execution;
using Covibe.Execution.Local;
using Covibe.Protocol;

namespace Covibe.Terminals;

/// <summary>
/// <c>covibe terminald</c>'s shells in the bubblewrap sandbox <c>covibe serve</c> uses (<see cref="HostSandbox"/>): they
/// see the system's programs read-only, <c>TERMINAL_ROOT</c> writable at its own path, and a private <c>/tmp</c>; not
/// the daemon's files, its process, nor any other directory of this machine. As root, shells run as the sandbox user
/// (<c>TERMINAL_SANDBOX_USER</c>, 10001:10001) without capabilities, in a network of their own that reaches the
/// internet and not this machine's loopback services; otherwise as the daemon's user, sharing its network.
/// </summary>
public sealed class TerminaldSandbox(TerminalLaunch local, HostSandbox sandbox) : ITerminalLauncher
{
    public HostSandbox Sandbox => sandbox;

    public async Task<TerminalStart> StartInfoAsync(TerminalUser user, string sessionId, TerminalConfig? config, CancellationToken cancellationToken)
    {
        var start = await local.StartInfoAsync(user, sessionId, config, cancellationToken);
        // The root is mounted at its own path: working directories and `cwd` of commands mean the same in there.
        return start with { Info = sandbox.WrapShell(start.Info, [new SandboxMount(local.Root, local.Root, Writable: true)], start.Info.WorkingDirectory, local.Root) };
    }

    /// <summary>
    /// The sandbox for <paramref name="root"/>, checked by starting a program in it that must be able to write the root;
    /// throws, saying how to fix it or to opt out (<c>TERMINAL_SANDBOX=off</c>), when it cannot work here.
    /// </summary>
    public static HostSandbox Create(string root, string identityDirectory, (uint Uid, uint Gid) runAs)
    {
        const string OptOut = " Or set TERMINAL_SANDBOX=off to run shells unsandboxed, as this daemon's user (only on a machine that trusted people use).";
        var bwrap = HostSandbox.FindBubblewrap()
            ?? throw new InvalidOperationException("covibe terminald runs shells in a bubblewrap sandbox, and bubblewrap (bwrap) is not installed: apt-get install bubblewrap." + OptOut);
        // As root, a network of their own (the internet, not this machine); otherwise the daemon's (an unprivileged bubblewrap cannot connect one).
        var networking = CurrentProcess.IsRoot ? SandboxNetworking.Internet : SandboxNetworking.Host;
        var sandbox = new HostSandbox(bwrap, [], identityDirectory, runAs, networking,
            networking == SandboxNetworking.Internet ? SandboxNetwork.BlockedRoutes(allowPrivate: false) : null);
        if (sandbox.Check() is { } problem)
        {
            throw new InvalidOperationException($"covibe terminald runs shells in a bubblewrap sandbox, and it does not work here: {problem}." + OptOut);
        }
        var (exitCode, _) = sandbox.Run(["test", "-w", root], [new SandboxMount(root, root, Writable: true)], root);
        if (exitCode != 0)
        {
            var (uid, gid) = sandbox.User;
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                $"Shells run as uid {uid} in the sandbox and cannot write the terminal root {root}: set TERMINAL_ROOT to a directory of theirs (mkdir -p /srv/covibe-terminals && chown {uid}:{gid} /srv/covibe-terminals), or give them this one (chown -R {uid}:{gid} {root}).{OptOut}"));
        }
        return sandbox;
    }
}
