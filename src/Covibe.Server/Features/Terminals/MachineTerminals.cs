using Covibe.Execution;
using Covibe.Protocol;
using Covibe.Server.Features.Machines;
using Covibe.Server.Features.Vms;
using Covibe.Terminals;

namespace Covibe.Server.Features.Terminals;

/// <summary>
/// What a member's terminal runs, from the same decision as their agents (<see cref="MachineResolver"/>): the place's
/// backend opens it (<see cref="IExecutionBackend.OpenTerminalAsync"/>: a login shell on one of their VMs, in one of their
/// boxes, in their team's workspace container, or on this machine in their team's workspace, sandboxed like the team's
/// agents unless the operator opted out). This room only turns the client's <c>session create</c> into a shell, by
/// where the place keeps its files: this machine's workspace, a running container's directory, or a VM's home.
/// </summary>
public sealed class MachineTerminals(TerminalLaunch local, MachineResolver machines, VmAuditLog audit) : ITerminalLauncher
{
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
        config ??= new TerminalConfig();
        var (shell, commandDirectory) = place switch
        {
            { Workspace: { } workspace } => InWorkspace(place, workspace, sessionId, config),
            { Jobs.Remote: true } => OnVm(config),
            { WorkingDirectory: { } root } => InRunningContainer(root, sessionId, config),
            _ => throw new TerminalException(TerminalErrorCodes.CommandFailed, "Terminals do not open there."),
        };
        var launch = place.Shell(new ShellLaunch(shell, teamId));
        return new TerminalStart(shell, commandDirectory, place.Label, async ct =>
        {
            try
            {
                return await place.Jobs.OpenTerminalAsync(launch, ct);
            }
            catch (PlaceUnreachableException e)
            {
                // Marked down already: the next terminal is placed without it (the fallback, or a refusal saying why).
                throw new TerminalException(TerminalErrorCodes.CommandFailed, $"{e.Message} Create the terminal again: it opens where the server runs terminals without it.");
            }
        });
    }

    /// <summary>The team's workspace on this machine (as it is, in the sandbox or in its container): cwd confined to it, paths as the place sees them.</summary>
    private (PtyStartInfo, Func<string, string>) InWorkspace(Place place, string workspace, string sessionId, TerminalConfig config) =>
        (local.Build(config, sessionId, root: workspace), cwd => place.Inside(local.WorkingDirectory(cwd, workspace)));

    /// <summary>A VM: the shell is the VM user's login shell, in <c>~/project</c> (or <c>cwd</c>); a command's cwd is a path there.</summary>
    private static (PtyStartInfo, Func<string, string>) OnVm(TerminalConfig config)
    {
        var (cols, rows) = TerminalLaunch.Size(config.Cols, config.Rows);
        return (new PtyStartInfo("sh", [], config.Cwd ?? "project", new Dictionary<string, string>(), cols, rows), dir => dir);
    }

    /// <summary>A running container (a box): its own shell, starting in its repository (or <c>cwd</c> inside it); paths stay below it.</summary>
    private (PtyStartInfo, Func<string, string>) InRunningContainer(string root, string sessionId, TerminalConfig config)
    {
        string Inside(string? cwd) => string.IsNullOrEmpty(cwd) ? root
            : Path.GetFullPath(Path.Combine(root, cwd)) is var full && (full == root || full.StartsWith(root + "/", StringComparison.Ordinal)) ? full : root;
        var info = local.Build(config with { Cwd = null, Shell = null }, sessionId, root: root);
        return (info with { WorkingDirectory = Inside(config.Cwd) }, Inside);
    }
}
