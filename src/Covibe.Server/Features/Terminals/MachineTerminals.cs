using Covibe.Server.Features.Containers;
using Covibe.Execution;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Machines;
using Covibe.Server.Features.Vms;
using Covibe.Terminals;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Covibe.Execution.Local;
using Covibe.Execution.Containers;
using Covibe.Execution.Ssh;

namespace Covibe.Server.Features.Terminals;

/// <summary>
/// What a member's terminal runs, from the same decision as their agents (<see cref="MachineResolver"/>): a login shell on
/// one of their own VMs (<c>ssh -tt</c> over the server's shared connection, or a PTY their runner opens, starting in
/// <c>~/project</c>), in one of their boxes, in their team's workspace container, or on this machine in their team's
/// workspace, sandboxed like the team's agents unless the operator opted out.
/// </summary>
public sealed class MachineTerminals(
    TerminalLaunch local,
    MachineResolver machines,
    ContainerEngine engine,
    VmConnector vms,
    SshClient ssh,
    VmAuditLog audit,
    Runners.RunnerHub runners,
    Runners.RunnerTerminals runnerTerminals) : ITerminalLauncher
{
    private const string RemoteShell = "cd -- \"$1\" 2>/dev/null || cd; exec \"${SHELL:-/bin/sh}\" -l";

    public async Task<TerminalStart> StartInfoAsync(TerminalUser user, string sessionId, TerminalConfig? config, CancellationToken cancellationToken)
    {
        var teamId = user.TeamId ?? throw new InvalidOperationException("A member always has a team.");
        Place place;
        try
        {
            place = await machines.PlaceAsync(teamId, user.Id, config?.Vm, config?.BoxId, cancellationToken);
        }
        catch (PlacementException e)
        {
            throw new TerminalException(e.Field == "vmId" ? TerminalErrorCodes.InvalidVm : TerminalErrorCodes.CommandFailed, e.Message);
        }
        catch (PlacementUnavailableException e)
        {
            throw new TerminalException(TerminalErrorCodes.CommandFailed, e.Message);
        }
        if (place.Jobs.Remote)
        {
            await audit.AgentAsync(place.Target, teamId, user.Id, "terminal.open", place.Method, cancellationToken);
        }
        return place switch
        {
            HostPlace host => OnHost(host, sessionId, config),
            SandboxPlace sandbox => InSandbox(sandbox, sessionId, config),
            ContainerPlace container => InContainer(teamId, container, sessionId, config),
            ContainerExecPlace box => InBox(box, sessionId, config ?? new TerminalConfig()),
            SshPlace vm => await OverSshAsync(vm, config ?? new TerminalConfig(), cancellationToken),
            RunnerPlace vm => ThroughRunner(vm, config ?? new TerminalConfig()),
            _ => throw new TerminalException(TerminalErrorCodes.CommandFailed, "Terminals do not open there."),
        };
    }

    /// <summary>A shell in the team's workspace container, through a TTY exec; the same shell, cwd and environment rules as on this machine.</summary>
    private TerminalStart InContainer(string teamId, ContainerPlace place, string sessionId, TerminalConfig? config)
    {
        var workspace = place.Workspace;
        var info = local.Build(config, sessionId, root: workspace);
        var shell = info.Environment["SHELL"];
        var environment = new Dictionary<string, string>(info.Environment)
        {
            ["HOME"] = Isolated.Workspace,
            ["USER"] = "covibe",
            ["LOGNAME"] = "covibe",
        };
        var cwd = place.Inside(info.WorkingDirectory);
        return new TerminalStart(info, dir => place.Inside(local.WorkingDirectory(dir, workspace)), place.Label,
            ct => engine.Containers.OpenTerminalAsync(teamId, workspace, [shell], cwd, environment, info.Columns, info.Rows, ct));
    }

    /// <summary>A login shell in one of the member's boxes, as the box's user, starting in its repository (or <c>cwd</c> inside it).</summary>
    private TerminalStart InBox(ContainerExecPlace place, string sessionId, TerminalConfig config)
    {
        var box = place.Exec;
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
        return new TerminalStart(info with { Program = shell[0], Arguments = shell[1..] }, Inside, place.Label,
            async ct => (IPty)await ContainerPty.StartAsync(engine.Client, box.Container, box.User, shell, cwd, environment, info.Columns, info.Rows, ct));
    }

    /// <summary>A shell on this machine with the server's own privileges, in the team's workspace.</summary>
    private TerminalStart OnHost(HostPlace place, string sessionId, TerminalConfig? config)
    {
        var info = local.Build(config, sessionId, root: place.Workspace);
        return new TerminalStart(info, cwd => local.WorkingDirectory(cwd, place.Workspace));
    }

    /// <summary>A shell in the sandbox, with the team's workspace at <see cref="Isolated.Workspace"/>.</summary>
    private TerminalStart InSandbox(SandboxPlace place, string sessionId, TerminalConfig? config)
    {
        var workspace = place.Workspace;
        var info = local.Build(config, sessionId, root: workspace);
        // The shell leads a session of its own inside (setsid --ctty), so job control works in its PID namespace.
        var argv = place.Sandbox.Wrap(["setsid", "--ctty", "--wait", info.Program, .. info.Arguments],
            [new SandboxMount(workspace, Isolated.Workspace, Writable: true)], place.Inside(info.WorkingDirectory), dieWithParent: true);
        var environment = new Dictionary<string, string>(info.Environment)
        {
            ["HOME"] = Isolated.Workspace,
            ["USER"] = "covibe",
            ["LOGNAME"] = "covibe",
        };
        return new TerminalStart(info with { Program = argv[0], Arguments = argv[1..], WorkingDirectory = "/", Environment = environment, ControllingTerminalInside = true },
            cwd => place.Inside(local.WorkingDirectory(cwd, workspace)));
    }

    /// <summary>A PTY on the VM, opened by its runner; the shell runs as the runner's user.</summary>
    private TerminalStart ThroughRunner(RunnerPlace place, TerminalConfig config)
    {
        var (cols, rows) = TerminalLaunch.Size(config.Cols, config.Rows);
        var cwd = config.Cwd ?? "project";
        var session = runners.SessionOf(place.VmId)
            ?? throw new TerminalException(TerminalErrorCodes.CommandFailed, $"The runner of '{place.MachineName}' is not connected. Start `covibe runner` on the VM, then open the terminal again.");
        var placeholder = new PtyStartInfo("sh", [], cwd, new Dictionary<string, string>(), cols, rows);
        return new TerminalStart(placeholder, dir => dir, place.Label, async ct =>
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

    /// <summary>A login shell over SSH as the VM's user, in <c>~/project</c> (or <c>cwd</c>; a box's repository there).</summary>
    private async Task<TerminalStart> OverSshAsync(SshPlace place, TerminalConfig config, CancellationToken cancellationToken)
    {
        var (cols, rows) = TerminalLaunch.Size(config.Cols, config.Rows);
        var cwd = place.RemoteDirectory ?? config.Cwd ?? "project";
        try
        {
            var target = await vms.ConnectAsync(place.VmId, cancellationToken);
            var info = await ssh.InteractiveAsync(target, ["sh", "-c", RemoteShell, "covibe-terminal", cwd], cols, rows, cancellationToken);
            // A command's cwd on a VM is a path there, in the member's own account.
            return new TerminalStart(info, dir => dir, place.Label);
        }
        catch (SshException e)
        {
            throw new TerminalException(TerminalErrorCodes.CommandFailed, e.Message);
        }
    }
}
