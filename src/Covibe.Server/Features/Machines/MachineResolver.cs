using Covibe.Server.Features.Containers;
using Covibe.Execution;
using Covibe.Server.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Machines;

/// <summary>
/// The one place that decides where a member's agent runs: on one of their VMs when they name
/// it, else on this machine, in the sandbox unless the operator opted out of it. Features ask
/// here and run what they get on the backend it names; they never branch on where.
/// </summary>
public sealed class MachineResolver(
    IDbContextFactory<CovibeDb> dbs, Workspaces workspaces, Boxes.BoxWork boxWork, IOptions<IsolationOptions> isolation, IOptions<ContainersOptions> containers, ContainerEngine engine,
    ILogger<MachineResolver> logger)
{
    /// <summary>Where <c>covibe</c> is inside the default image (<c>covibe image build</c> puts it there).</summary>
    public static readonly IReadOnlyList<string> CovibeInImage = ["/usr/local/bin/covibe"];

    /// <summary>Where an agent of <paramref name="userId"/> runs. Throws <see cref="PlacementException"/> for a VM that is not theirs.</summary>
    public async Task<Placement> PlaceAgentAsync(string teamId, string userId, string? vmId, string? boxId, CancellationToken cancellationToken)
    {
        if (!string.IsNullOrEmpty(boxId))
        {
            return await PlaceInBoxAsync(teamId, userId, boxId, cancellationToken);
        }
        if (!string.IsNullOrEmpty(vmId) && vmId != LocalBackend.BackendName)
        {
            await using var db = await dbs.CreateDbContextAsync(cancellationToken);
            var connection = await db.Vms.Where(vm => vm.Id == vmId && vm.UserId == userId).Select(vm => vm.ConnectionType).SingleOrDefaultAsync(cancellationToken)
                ?? throw new PlacementException("vmId", $"You have no VM '{vmId}'. Agents run on your own VMs (GET /api/vm/list), or on this server without 'vmId'.");
            // A VM has its own environment: none of the server's variables go there. Its runner, if it dials out; else SSH.
            return connection == Features.Vms.Vm.SshProxy
                ? new Placement(SshBackend.BackendName, vmId, null, "ssh", PassServerEnvironment: false, new Dictionary<string, string>())
                : new Placement(Features.Runners.RunnerBackend.BackendName, vmId, null, "runner", PassServerEnvironment: false, new Dictionary<string, string>());
        }
        if (!await UsesContainersAsync(teamId, cancellationToken))
        {
            return Host(teamId);
        }
        // Seed 003: in a container when the engine can take it; else the fallback, saying why, or a refusal.
        if (await engine.ProblemAsync(cancellationToken) is { } problem)
        {
            if (containers.Value.Fallback == "none")
            {
                throw new PlacementUnavailableException("container-engine-unavailable",
                    $"{problem} This server runs agents in containers only (Covibe:Containers:Fallback=none); try again when the engine is back.");
            }
            MachinesLog.FellBack(logger, teamId, problem);
            return Host(teamId) with { Fallback = $"{problem} The agent runs on the server's machine instead, sandboxed." };
        }
        var environment = new Dictionary<string, string> { ["HOME"] = HostSandbox.Workspace, ["USER"] = "covibe", ["LOGNAME"] = "covibe", ["PATH"] = "/usr/local/bin:/usr/bin:/bin" };
        if (containers.Value.ClaudeApiKey is { Length: > 0 } key)
        {
            environment["CLAUDE_API_KEY"] = key;
            environment["ANTHROPIC_API_KEY"] = key;
        }
        return new Placement(ContainerBackend.BackendName, null, workspaces.ForTeam(teamId), "docker", PassServerEnvironment: false, environment,
            CovibeCommand: CovibeInImage);
    }

    /// <summary>
    /// In one of the member's ready boxes: its container, as its user, in its repository, with none of the server's
    /// variables. Throws <see cref="PlacementException"/> for a box that is not theirs or not ready.
    /// </summary>
    public async Task<Placement> PlaceInBoxAsync(string teamId, string userId, string boxId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var box = await db.Boxes.AsNoTracking().SingleOrDefaultAsync(b => b.Id == boxId && b.TeamId == teamId && b.HolderId == userId, cancellationToken)
            ?? throw new PlacementException("boxId", $"You hold no box '{boxId}'. Request one with POST /api/boxes; agents and terminals run in your own boxes.");
        if (box.Status != Features.Boxes.BoxStatuses.Ready || box.Target is null)
        {
            throw new PlacementException("boxId", box.Status == Features.Boxes.BoxStatuses.Provisioning
                ? $"The box '{boxId}' is still provisioning ({box.Step}); wait until it is ready."
                : $"The box '{boxId}' is {box.Status}; request a new one.");
        }
        if (box.Backend == "vm")
        {
            // On the VM, as its user, in the box's directory: like any agent on a VM (none of the server's variables).
            return new Placement(SshBackend.BackendName, box.Target, null, "ssh", PassServerEnvironment: false, new Dictionary<string, string>(),
                BoxId: box.Id, RemoteDirectory: Features.Boxes.BoxVms.RepoDirectory(box.Id));
        }
        var ids = box.RunAs!.Split(':');
        var launch = new BoxLaunch(box.Target, box.RunAs, uint.Parse(ids[0], System.Globalization.CultureInfo.InvariantCulture),
            uint.Parse(ids[1], System.Globalization.CultureInfo.InvariantCulture), box.Workspace ?? HostSandbox.Workspace, boxWork.RunsPath(box.Id));
        return new Placement(BoxExecBackend.BackendName, box.Target, null, "box", PassServerEnvironment: false, new Dictionary<string, string>(),
            CovibeCommand: box.Devcontainer ? null : CovibeInImage, BoxId: box.Id, Box: launch);
    }

    /// <summary>Whether the team's agents and terminals go to containers: its own flag (seed 003's team-specific feature flag) if set, else the server's switches.</summary>
    public async Task<bool> UsesContainersAsync(string teamId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var flag = await db.Teams.Where(t => t.Id == teamId).Select(t => t.UseContainers).SingleOrDefaultAsync(cancellationToken);
        return flag ?? containers.Value.ForAgents;
    }

    /// <summary>
    /// Where a deploy of the team's preview runs, with the deploy's own files (<paramref name="directory"/>) as its
    /// workspace: in a container when the operator runs previews there (seed 003's <c>USE_DOCKER_PREVIEW</c>) and the
    /// engine is up, else on this machine, sandboxed unless opted out (seed 003's createPreviewDirect, saying why in
    /// <see cref="Placement.Fallback"/>). The app gets none of the server's variables.
    /// </summary>
    public async Task<Placement> PlacePreviewAsync(string teamId, string directory, CancellationToken cancellationToken)
    {
        var host = Host(teamId) with { Workspace = directory, PassServerEnvironment = false };
        if (!containers.Value.ForPreview)
        {
            return host;
        }
        if (await engine.ProblemAsync(cancellationToken) is { } problem)
        {
            MachinesLog.FellBack(logger, teamId, problem);
            return host with { Fallback = $"{problem} The preview runs on the server's machine instead, sandboxed." };
        }
        return new Placement(ContainerBackend.BackendName, null, directory, "docker", PassServerEnvironment: false,
            new Dictionary<string, string> { ["HOME"] = HostSandbox.Workspace, ["PATH"] = "/usr/local/bin:/usr/bin:/bin" });
    }

    /// <summary>This machine: the team's workspace, in the sandbox (as its user, home in the workspace) unless opted out.</summary>
    public Placement Host(string teamId)
    {
        var workspace = workspaces.ForTeam(teamId);
        return isolation.Value.IsSandboxed
            ? new Placement(LocalBackend.SandboxedName, null, workspace, "local", PassServerEnvironment: true,
                new Dictionary<string, string> { ["HOME"] = HostSandbox.Workspace, ["USER"] = "covibe", ["LOGNAME"] = "covibe" })
            : new Placement(LocalBackend.BackendName, null, workspace, "local", PassServerEnvironment: true, new Dictionary<string, string>());
    }
}
