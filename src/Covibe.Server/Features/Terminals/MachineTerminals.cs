using Covibe.Server.Features.Containers;
using Covibe.Execution;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Machines;
using Covibe.Server.Features.Vms;
using Covibe.Terminals;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Terminals;

/// <summary>
/// What a member's terminal runs, from the same decision as their agents: with <c>vm</c>, a login
/// shell on one of their own VMs (<c>ssh -tt</c> over the server's shared connection, starting in
/// <c>~/project</c>); otherwise a shell on this machine in their team's workspace, sandboxed
/// like the team's agents unless the operator opted out.
/// </summary>
public sealed class MachineTerminals(
    TerminalLaunch local,
    MachineResolver machines,
    IOptions<ContainersOptions> containers,
    ContainerEngine engine,
    MachinesFeature.Sandboxes sandboxes,
    IDbContextFactory<CovibeDb> dbs,
    VmConnector vms,
    SshClient ssh,
    VmAuditLog audit,
    Runners.RunnerHub runners,
    Runners.RunnerTerminals runnerTerminals) : ITerminalLauncher
{
    private const string RemoteShell = "cd -- \"$1\" 2>/dev/null || cd; exec \"${SHELL:-/bin/sh}\" -l";

    public async Task<TerminalStart> StartInfoAsync(TerminalUser user, string sessionId, TerminalConfig? config, CancellationToken cancellationToken)
    {
        if (config?.Vm is { Length: > 0 } vmId)
        {
            return await OnVmAsync(user, vmId, config, cancellationToken);
        }
        if (config?.BoxId is { Length: > 0 } boxId)
        {
            return await InBoxAsync(user, sessionId, boxId, config, cancellationToken);
        }
        if (await machines.UsesContainersAsync(user.TeamId ?? "", cancellationToken))
        {
            // Where the team's agents run: in its container, unless the engine is away (then as agents do: the sandbox, or refused).
            var problem = await engine.ProblemAsync(cancellationToken);
            if (problem is null)
            {
                return InContainer(user, sessionId, config);
            }
            if (containers.Value.Fallback == "none")
            {
                throw new TerminalException(TerminalErrorCodes.CommandFailed, $"{problem} Terminals run in containers only on this server; try again when the engine is back.");
            }
        }
        return OnHost(user, sessionId, config);
    }

    /// <summary>A shell in the team's workspace container, through a TTY exec; the same shell, cwd and environment rules as on this machine.</summary>
    private TerminalStart InContainer(TerminalUser user, string sessionId, TerminalConfig? config)
    {
        var teamId = user.TeamId ?? throw new InvalidOperationException("A member always has a team.");
        var workspace = machines.Host(teamId).Workspace!;
        var info = local.Build(config, sessionId, root: workspace);
        var shell = info.Environment["SHELL"];
        string Inside(string hostPath) => HostSandbox.Workspace + hostPath[workspace.Length..];
        var environment = new Dictionary<string, string>(info.Environment)
        {
            ["HOME"] = HostSandbox.Workspace,
            ["USER"] = "covibe",
            ["LOGNAME"] = "covibe",
        };
        var cwd = Inside(info.WorkingDirectory);
        return new TerminalStart(info, dir => Inside(local.WorkingDirectory(dir, workspace)), "team container",
            ct => engine.Containers.OpenTerminalAsync(teamId, workspace, [shell], cwd, environment, info.Columns, info.Rows, ct));
    }

    /// <summary>A login shell in one of the member's boxes, as the box's user, starting in its repository (or <c>cwd</c> inside it).</summary>
    private async Task<TerminalStart> InBoxAsync(TerminalUser user, string sessionId, string boxId, TerminalConfig config, CancellationToken cancellationToken)
    {
        Placement placement;
        try
        {
            placement = await machines.PlaceInBoxAsync(user.TeamId ?? "", user.Id, boxId, cancellationToken);
        }
        catch (PlacementException e)
        {
            throw new TerminalException(TerminalErrorCodes.CommandFailed, e.Message);
        }
        if (placement.RemoteDirectory is { } remote)
        {
            var (cols, rows) = TerminalLaunch.Size(config.Cols, config.Rows);
            try
            {
                var target = await vms.ConnectAsync(placement.Target!, cancellationToken);
                var started = await ssh.InteractiveAsync(target, ["sh", "-c", RemoteShell, "covibe-terminal", remote], cols, rows, cancellationToken);
                return new TerminalStart(started, cwd => cwd, $"box {boxId}");
            }
            catch (SshException e)
            {
                throw new TerminalException(TerminalErrorCodes.CommandFailed, e.Message);
            }
        }
        var box = placement.Box!;
        var root = box.WorkingDirectory;
        var info = local.Build(config with { Cwd = null, Shell = null }, sessionId, root: root);
        // Paths a command names are inside the box, below its repository.
        string Inside(string? cwd) => string.IsNullOrEmpty(cwd) ? root
            : Path.GetFullPath(Path.Combine(root, cwd)) is var full && (full == root || full.StartsWith(root + "/", StringComparison.Ordinal)) ? full : root;
        var environment = new Dictionary<string, string>(info.Environment);
        environment.Remove("HOME");
        environment.Remove("SHELL");
        var cwd = Inside(config.Cwd);
        string[] shell = ["sh", "-c", "if command -v bash >/dev/null; then exec bash -l; else exec sh -l; fi"];
        return new TerminalStart(info with { Program = shell[0], Arguments = shell[1..] }, Inside, $"box {boxId}",
            async ct => (IPty)await ContainerPty.StartAsync(engine.Client, box.Container, box.User, shell, cwd, environment, info.Columns, info.Rows, ct));
    }

    private TerminalStart OnHost(TerminalUser user, string sessionId, TerminalConfig? config)
    {
        var workspace = machines.Host(user.TeamId ?? throw new InvalidOperationException("A member always has a team.")).Workspace!;
        var info = local.Build(config, sessionId, root: workspace);
        if (sandboxes.InUse is not { } sandbox)
        {
            return new TerminalStart(info, cwd => local.WorkingDirectory(cwd, workspace));
        }
        string Inside(string hostPath) => HostSandbox.Workspace + hostPath[workspace.Length..];
        // The shell leads a session of its own inside (setsid --ctty), so job control works in its PID namespace.
        var argv = sandbox.Wrap(["setsid", "--ctty", "--wait", info.Program, .. info.Arguments],
            [new SandboxMount(workspace, HostSandbox.Workspace, Writable: true)], Inside(info.WorkingDirectory), dieWithParent: true);
        var environment = new Dictionary<string, string>(info.Environment)
        {
            ["HOME"] = HostSandbox.Workspace,
            ["USER"] = "covibe",
            ["LOGNAME"] = "covibe",
        };
        return new TerminalStart(info with { Program = argv[0], Arguments = argv[1..], WorkingDirectory = "/", Environment = environment, ControllingTerminalInside = true },
            cwd => Inside(local.WorkingDirectory(cwd, workspace)));
    }

    private async Task<TerminalStart> OnVmAsync(TerminalUser user, string vmId, TerminalConfig config, CancellationToken cancellationToken)
    {
        var (cols, rows) = TerminalLaunch.Size(config.Cols, config.Rows);
        Vm vm;
        await using (var db = await dbs.CreateDbContextAsync(cancellationToken))
        {
            vm = await db.Vms.AsNoTracking().SingleOrDefaultAsync(v => v.Id == vmId && v.UserId == user.Id, cancellationToken)
                ?? throw new TerminalException(TerminalErrorCodes.InvalidVm, $"You have no VM '{vmId}'. Terminals open on your own VMs (GET /api/vm/list), or on this server without 'vm'.");
        }
        await audit.WriteAsync(vm.Id, vm.TeamId, VmAuditLog.Member, user.Id, "terminal.open", vm.IsRunner ? "through the runner" : "ssh", cancellationToken);
        var cwd = config.Cwd ?? "project";
        if (vm.IsRunner)
        {
            // A PTY on the VM, opened by its runner; the shell runs as the runner's user.
            var session = runners.SessionOf(vm.Id)
                ?? throw new TerminalException(TerminalErrorCodes.CommandFailed, $"The runner of '{vm.Name}' is not connected. Start `covibe runner` on the VM, then open the terminal again.");
            var placeholder = new PtyStartInfo("sh", [], cwd, new Dictionary<string, string>(), cols, rows);
            return new TerminalStart(placeholder, dir => dir, vm.Name, async ct =>
            {
                try
                {
                    return await runnerTerminals.OpenAsync(session, cwd, cols, rows, ct);
                }
                catch (IOException e)
                {
                    throw new TerminalException(TerminalErrorCodes.CommandFailed, e.Message);
                }
            });
        }
        try
        {
            var target = await vms.ConnectAsync(vmId, cancellationToken);
            var info = await ssh.InteractiveAsync(target, ["sh", "-c", RemoteShell, "covibe-terminal", cwd], cols, rows, cancellationToken);
            // A command's cwd on a VM is a path there, in the member's own account.
            return new TerminalStart(info, dir => dir, vm.Name);
        }
        catch (SshException e)
        {
            throw new TerminalException(TerminalErrorCodes.CommandFailed, e.Message);
        }
    }
}
