using Covibe.Server.Features.Containers;
using Covibe.Execution;
using Covibe.Server.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Covibe.Execution.Local;
using Covibe.Execution.Containers;
using Covibe.Execution.Ssh;

namespace Covibe.Server.Features.Machines;

/// <summary>
/// The one place that decides where a member's code runs, and the only reader of the VM, box and team settings that
/// choose it: in one of their boxes or on one of their VMs when they name it, else on this machine, in a container when
/// the team's agents go there (seed 003), else in the sandbox unless the operator opted out of it. Features ask here and
/// run what they get on the <see cref="Place"/> it answers; they never branch on where.
/// </summary>
public sealed class MachineResolver(
    IDbContextFactory<CovibeDb> dbs, Workspaces workspaces, Boxes.BoxWork boxWork, IOptions<ContainersOptions> containers,
    ContainerEngine engine, ExecutionBackends backends, MachinesFeature.Sandboxes sandboxes, Egress.EgressEnforcement egress, ILogger<MachineResolver> logger)
{
    /// <summary>Where <c>covibe</c> is inside the default image (<c>covibe image build</c> puts it there).</summary>
    public static readonly IReadOnlyList<string> CovibeInImage = ["/usr/local/bin/covibe"];

    /// <summary>
    /// Where an agent or a terminal of <paramref name="userId"/> runs (a terminal of a team whose agents have containers opens
    /// in its one long-lived workspace container). Throws <see cref="PlacementException"/> for a VM or box that is not
    /// theirs, <see cref="PlacementUnavailableException"/> when it must go to a container and the engine is away.
    /// </summary>
    public async Task<Place> PlaceAsync(string teamId, string userId, string? vmId, string? boxId, CancellationToken cancellationToken)
    {
        var team = await TeamAsync(teamId, cancellationToken);
        return await WithEgressAsync(await PlaceWithoutEgressAsync(team, userId, vmId, boxId, cancellationToken), team, cancellationToken)
            with { TeamHasRepository = team.HasRepository, TeamAgentPermissionMode = team.AgentPermissionMode, TeamHasBudgets = team.HasBudgets };
    }

    /// <summary>What placement needs of the team's row, in one round trip: its containers flag, its egress policy, whether it has a repository, its agents' permission mode, whether it has budgets.</summary>
    private sealed record TeamPlacing(string Id, bool? UseContainers, string? EgressMode, string? EgressAllow, bool HasRepository = false, string? AgentPermissionMode = null, bool HasBudgets = false);

    private async Task<TeamPlacing> TeamAsync(string teamId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await db.Teams.Where(t => t.Id == teamId)
            .Select(t => new TeamPlacing(t.Id, t.UseContainers, t.EgressMode, t.EgressAllow, db.Repositories.Any(r => r.TeamId == t.Id && r.Url != null), t.AgentPermissionMode,
                db.Budgets.Any(b => b.TeamId == t.Id)))
            .SingleOrDefaultAsync(cancellationToken) ?? new TeamPlacing(teamId, null, null, null);
    }

    /// <summary><paramref name="place"/> with the team's egress policy, ready to hold there (an open one needs nothing).</summary>
    private async Task<Place> WithEgressAsync(Place place, TeamPlacing team, CancellationToken cancellationToken)
    {
        var teamId = team.Id;
        var running = place is ContainerExecPlace box ? box.Exec.Container : null;
        try
        {
            var (teamEgress, proxyHost) = await egress.ForAsync(teamId, team.EgressMode, team.EgressAllow, place.EgressWall, running, cancellationToken);
            if (teamEgress is not null && place.EgressWall == Execution.Egress.EgressWall.Sandbox && !place.OwnNetwork)
            {
                throw new Execution.Egress.EgressNotEnforcedException(teamId);
            }
            return teamEgress is null ? place : place with { Egress = teamEgress, ProxyHost = proxyHost };
        }
        catch (Execution.Egress.EgressNotEnforcedException e)
        {
            throw new PlacementUnavailableException(PlacementUnavailableException.EgressNotEnforced, e.Message);
        }
    }

    private async Task<Place> PlaceWithoutEgressAsync(TeamPlacing team, string userId, string? vmId, string? boxId, CancellationToken cancellationToken)
    {
        var teamId = team.Id;
        if (!string.IsNullOrEmpty(boxId))
        {
            return await PlaceInBoxAsync(teamId, userId, boxId, cancellationToken);
        }
        if (!string.IsNullOrEmpty(vmId) && vmId != LocalBackend.BackendName)
        {
            return await OnVmAsync(userId, vmId, cancellationToken);
        }
        if (!(team.UseContainers ?? containers.Value.ForAgents))
        {
            return Host(teamId);
        }
        // Seed 003: in a container when the engine can take it; else the fallback, saying why, or a refusal.
        if (await engine.ProblemAsync(cancellationToken) is { } problem)
        {
            if (containers.Value.Fallback == "none")
            {
                throw new PlacementUnavailableException("container-engine-unavailable",
                    $"{problem} This server runs agents and terminals in containers only (Covibe:Containers:Fallback=none); try again when the engine is back.");
            }
            MachinesLog.FellBack(logger, teamId, problem);
            return Host(teamId) with { Fallback = $"{problem} It runs on the server's machine instead, sandboxed." };
        }
        var environment = Isolated.AsUser(new Dictionary<string, string> { ["PATH"] = "/usr/local/bin:/usr/bin:/bin" });
        if (containers.Value.ClaudeApiKey is { Length: > 0 } key)
        {
            environment["CLAUDE_API_KEY"] = key;
            environment["ANTHROPIC_API_KEY"] = key;
        }
        return new ContainerPlace(backends.Get(ContainerBackend.BackendName), workspaces.ForTeam(teamId), environment) { CovibeCommand = CovibeInImage };
    }

    /// <summary>On one of the member's VMs: its runner, if it dials out; else SSH. A VM has its own environment: none of the server's variables go there.</summary>
    private async Task<Place> OnVmAsync(string userId, string vmId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var vm = await db.Vms.Where(vm => vm.Id == vmId && vm.UserId == userId).Select(vm => new { vm.Name, vm.ConnectionType }).SingleOrDefaultAsync(cancellationToken)
            ?? throw new PlacementException("vmId", $"You have no VM '{vmId}'. Agents and terminals run on your own VMs (GET /api/vm/list), or on this server when you name none.");
        return vm.ConnectionType == Features.Vms.Vm.SshProxy
            ? new SshPlace(backends.Get(SshBackend.BackendName), vmId, vm.Name)
            : new RunnerPlace(backends.Get(Features.Runners.RunnerBackend.BackendName), vmId, vm.Name);
    }

    /// <summary>
    /// In one of the member's ready boxes: its container, as its user, in its repository, with none of the server's
    /// variables (on a VM: like any agent there). Throws <see cref="PlacementException"/> for a box that is not theirs or not ready.
    /// </summary>
    private async Task<Place> PlaceInBoxAsync(string teamId, string userId, string boxId, CancellationToken cancellationToken)
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
        if (box.Backend == Boxes.VmBoxes.KindName)
        {
            return new SshPlace(backends.Get(SshBackend.BackendName), box.Target, box.Target, Features.Boxes.VmBoxes.RepoDirectory(box.Id)) { BoxId = box.Id };
        }
        var ids = box.RunAs!.Split(':');
        var exec = new ContainerExec(box.Target, box.RunAs, uint.Parse(ids[0], System.Globalization.CultureInfo.InvariantCulture),
            uint.Parse(ids[1], System.Globalization.CultureInfo.InvariantCulture), box.Workspace ?? Isolated.Workspace, boxWork.RunsPath(box.Id));
        return new ContainerExecPlace(backends.Get(ContainerExecBackend.BackendName), exec) { CovibeCommand = box.Devcontainer ? null : CovibeInImage, BoxId = box.Id };
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
    /// <see cref="Place.Fallback"/>). The app gets none of the server's variables.
    /// </summary>
    public async Task<Place> PlacePreviewAsync(string teamId, string directory, CancellationToken cancellationToken) =>
        await WithEgressAsync(await PlacePreviewWithoutEgressAsync(teamId, directory, cancellationToken), await TeamAsync(teamId, cancellationToken), cancellationToken);

    private async Task<Place> PlacePreviewWithoutEgressAsync(string teamId, string directory, CancellationToken cancellationToken)
    {
        var host = Host(teamId, directory);
        if (!containers.Value.ForPreview)
        {
            return host;
        }
        if (await engine.ProblemAsync(cancellationToken) is { } problem)
        {
            MachinesLog.FellBack(logger, teamId, problem);
            return host with { Fallback = $"{problem} The preview runs on the server's machine instead, sandboxed." };
        }
        return new ContainerPlace(backends.Get(ContainerBackend.BackendName), directory,
            new Dictionary<string, string> { ["HOME"] = Isolated.Workspace, ["PATH"] = "/usr/local/bin:/usr/bin:/bin" });
    }

    /// <summary>This machine: the team's workspace (or <paramref name="workspace"/>), in the sandbox (as its user, home in the workspace) unless opted out.</summary>
    private Place Host(string teamId, string? workspace = null)
    {
        workspace ??= workspaces.ForTeam(teamId);
        return sandboxes.InUse is { } sandbox
            ? new SandboxPlace(backends.Get(LocalBackend.SandboxedName), workspace, sandbox)
            : new HostPlace(backends.Get(LocalBackend.BackendName), workspace);
    }
}
