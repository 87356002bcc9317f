using Covibe.Execution;
using Covibe.Execution.Egress;
using Covibe.Execution.Local;

namespace Covibe.Server.Features.Machines;

/// <summary>
/// Where something of a member's runs: one of a closed set of places, each carrying its machine and the backend that
/// runs detached jobs there and opens terminals there (<see cref="Jobs"/>: start, probe, read the log, input, signal;
/// open a terminal). Only
/// <see cref="MachineResolver"/> makes one, from the VM, box and team settings; features run what they get and ask the
/// place what they need to know (<see cref="Inside"/>, <see cref="OwnNetwork"/>, <see cref="InContainer"/>...), never its
/// name. <see cref="Workspace"/>: the files on this machine a job there works on (the team's workspace, a deploy's files),
/// when it uses them. <see cref="Fallback"/> says why it is not where the operator asked for (seed 003's fallback).
/// <see cref="CovibeCommand"/>: how to run <c>covibe</c> there (the mock agent), when not as on this machine.
/// <see cref="BoxId"/>: in one of the member's boxes.
/// </summary>
public abstract record Place(IExecutionBackend Jobs, string? Workspace, IReadOnlyDictionary<string, string> Environment)
{
    /// <summary>The name stored with each job, to find its backend again after a restart.</summary>
    public string Backend => Jobs.Name;

    /// <summary>Seed 003's answer to where an agent runs (<c>local</c>, <c>docker</c>, <c>ssh</c>, ...).</summary>
    public abstract string Method { get; }

    /// <summary>The machine within the backend (a VM id, a container).</summary>
    public virtual string? Target => null;

    /// <summary>Whether the operator's listed server variables (<c>PassEnvironment</c>) may reach a job here: only on this machine.</summary>
    public virtual bool PassServerEnvironment => false;

    public string? Fallback { get; init; }

    public IReadOnlyList<string>? CovibeCommand { get; init; }

    public string? BoxId { get; init; }

    /// <summary>Whether the team has a repository connected (read with the team's row): a new agent then works on it by default.</summary>
    public bool TeamHasRepository { get; init; }

    /// <summary>Whether the team's owner has set any budget (read with the team's row: a team without one costs no round trip more).</summary>
    public bool TeamHasBudgets { get; init; }

    /// <summary>The permission mode the team gives its new agents (read with the team's row); null: the operator's.</summary>
    public string? TeamAgentPermissionMode { get; init; }

    /// <summary>Where a job here sees <paramref name="path"/>, a path of this machine under <see cref="Workspace"/>.</summary>
    public virtual string Inside(string path) => Isolated.InWorkspace(Workspace ?? path, path);

    /// <summary>A network of its own: what it serves is reached through a bridge, not this machine's loopback.</summary>
    public virtual bool OwnNetwork => false;

    /// <summary>In a container of its own: what it serves listens on all its addresses and is published on this machine's loopback.</summary>
    public virtual bool InContainer => false;

    /// <summary>Runs as the server's own user: the files it is given need not be handed to another.</summary>
    public virtual bool AsServerUser => false;

    /// <summary>Relative to the team's workspace, where a new agent works; null: a directory of its own there.</summary>
    public virtual string? WorkingDirectory => null;

    /// <summary>Whether a job here can be shown a repository of this machine (read-only, at its path): an agent's work tree borrows the team's mirror.</summary>
    public virtual bool SeesThisMachine => false;

    /// <summary>
    /// Whether an agent here can have a work tree on the team's repository: a clone borrowing the team's mirror where it is
    /// seen (<see cref="SeesThisMachine"/>), or made from a bundle copied there (an SSH VM).
    /// </summary>
    public virtual bool HoldsWorkTrees => SeesThisMachine;

    /// <summary>How a member's terminal names where it runs.</summary>
    public virtual string? Label => null;

    /// <summary>How the team's egress policy is enforced here: in the sandbox, at the team's bridge, or not by this server (another machine).</summary>
    public virtual EgressWall EgressWall => EgressWall.Sandbox;

    /// <summary>The team's egress policy when it is restricted (<see cref="MachineResolver"/> sets it), and where its proxy is reached from here.</summary>
    public TeamEgress? Egress { get; init; }

    public string? ProxyHost { get; init; }

    /// <summary><paramref name="launch"/> as it runs here: on this place's machine, with its workspace (and its team's egress policy).</summary>
    public virtual AgentLaunch Launch(AgentLaunch launch) =>
        launch with { Target = Target, Workspace = Workspace, Egress = Egress, Environment = WithProxy(launch.Environment) };

    /// <summary>A member's <paramref name="shell"/> as it opens here: on this place's machine, with its workspace (and its team's egress policy).</summary>
    public virtual ShellLaunch Shell(ShellLaunch shell) =>
        shell with { Target = Target, Workspace = Workspace, Egress = Egress, Shell = shell.Shell with { Environment = WithProxy(shell.Shell.Environment) } };

    private IReadOnlyDictionary<string, string> WithProxy(IReadOnlyDictionary<string, string> environment)
    {
        if (Egress is not { Policy.Restricted: true } egress || ProxyHost is null)
        {
            return environment;
        }
        var merged = new Dictionary<string, string>(environment);
        foreach (var (key, value) in egress.ProxyEnvironment(ProxyHost))
        {
            merged[key] = value;
        }
        return merged;
    }
}



/// <summary>This machine with the server's own privileges (the operator opted out of the sandbox).</summary>
public sealed record HostPlace(IExecutionBackend Jobs, string Workspace) : Place(Jobs, Workspace, new Dictionary<string, string>())
{
    public new string Workspace => base.Workspace!;

    public override bool SeesThisMachine => true;

    public override string Method => "local";

    public override bool PassServerEnvironment => true;

    public override string Inside(string path) => path;

    public override bool AsServerUser => true;
}

/// <summary>This machine, in <see cref="Sandbox"/>: as its user, with the workspace at <see cref="Isolated.Workspace"/> and home there.</summary>
public sealed record SandboxPlace(IExecutionBackend Jobs, string Workspace, HostSandbox Sandbox)
    : Place(Jobs, Workspace, Isolated.AsUser(new Dictionary<string, string>()))
{
    public new string Workspace => base.Workspace!;

    public override bool SeesThisMachine => true;

    public override string Method => "local";

    public override bool PassServerEnvironment => true;

    public override bool OwnNetwork => Sandbox.IsolatesNetwork;
}

/// <summary>A container of its own (seed 003's), through the engine, with the workspace mounted at <see cref="Isolated.Workspace"/>.</summary>
public sealed record ContainerPlace(IExecutionBackend Jobs, string Workspace, IReadOnlyDictionary<string, string> Environment) : Place(Jobs, Workspace, Environment)
{
    public new string Workspace => base.Workspace!;

    public override bool SeesThisMachine => true;

    public override string Method => "docker";

    public override bool InContainer => true;

    public override EgressWall EgressWall => EgressWall.TeamBridge;

    public override string Label => "team container";
}

/// <summary>
/// A VM reached over SSH (<see cref="VmId"/>, named <see cref="MachineName"/>), as its user, in <c>~/project</c> or
/// <see cref="RemoteDirectory"/> (relative to that user's home: a box's repository); none of the server's variables.
/// </summary>
public sealed record SshPlace(IExecutionBackend Jobs, string VmId, string MachineName, string? RemoteDirectory = null)
    : Place(Jobs, null, new Dictionary<string, string>())
{
    public override string Method => "ssh";

    public override EgressWall EgressWall => EgressWall.Elsewhere;

    public override string Target => VmId;

    public override bool HoldsWorkTrees => RemoteDirectory is null;

    public override string Label => BoxId is null ? MachineName : $"box {BoxId}";

    public override AgentLaunch Launch(AgentLaunch launch) => base.Launch(launch) with { RemoteDirectory = RemoteDirectory };

    public override ShellLaunch Shell(ShellLaunch shell) => base.Shell(shell) with { RemoteDirectory = RemoteDirectory };
}

/// <summary>A member's VM whose runner dialled out to the server (<see cref="VmId"/>, named <see cref="MachineName"/>).</summary>
public sealed record RunnerPlace(IExecutionBackend Jobs, string VmId, string MachineName) : Place(Jobs, null, new Dictionary<string, string>())
{
    public override EgressWall EgressWall => EgressWall.Elsewhere;

    public override string Method => "runner";

    public override string Target => VmId;

    public override bool HoldsWorkTrees => true;

    public override string Label => MachineName;
}

/// <summary>A container that already runs (a member's box): jobs are started in it as <see cref="ContainerExec.User"/>, in its repository.</summary>
public sealed record ContainerExecPlace(IExecutionBackend Jobs, ContainerExec Exec) : Place(Jobs, null, new Dictionary<string, string>())
{
    public override string Method => "box";

    public override EgressWall EgressWall => EgressWall.TeamBridge;

    public override string Target => Exec.Container;

    public override string WorkingDirectory => Exec.WorkingDirectory;

    public override string Label => $"box {BoxId}";

    public override AgentLaunch Launch(AgentLaunch launch) => base.Launch(launch) with { Exec = Exec };

    public override ShellLaunch Shell(ShellLaunch shell) => base.Shell(shell) with { Exec = Exec };
}

/// <summary>A request for a place the member may not use, or that does not exist: <see cref="Field"/> names the request field.</summary>
public sealed class PlacementException(string field, string message) : Exception(message)
{
    public string Field { get; } = field;
}

/// <summary>Nowhere to run it now (the container engine is down and no fallback is allowed): <see cref="Type"/> is the problem type.</summary>
public sealed class PlacementUnavailableException(string type, string message) : Exception(message)
{
    /// <summary>The team's egress policy cannot be enforced where its code would run.</summary>
    public const string EgressNotEnforced = "egress-not-enforced";

    public string Type { get; } = type;
}
