namespace Covibe.Server.Features.Machines;

/// <summary>
/// Where something of a member's runs: a backend by name (<c>sandbox</c>, <c>local</c>, <c>ssh</c>,
/// <c>container</c>), the machine within it (<see cref="Target"/>: a VM id, a container name), the
/// team's workspace on this machine when the backend uses it, and the environment policy.
/// <see cref="Method"/> is seed 003's answer (<c>docker</c>, <c>ssh</c>, <c>local</c>);
/// <see cref="Fallback"/> says why it is not where the operator asked for (seed 003's fallback).
/// <see cref="CovibeCommand"/>: how to run <c>covibe</c> there (the mock agent), when not as on this machine.
/// <see cref="BoxId"/> and <see cref="Box"/>: in one of the member's boxes (backend <c>box</c>), its container, user and repository;
/// for a box on a VM (backend <c>ssh</c>), <see cref="RemoteDirectory"/> is its repository there, relative to the VM user's home.
/// </summary>
public sealed record Placement(
    string Backend,
    string? Target,
    string? Workspace,
    string Method,
    bool PassServerEnvironment,
    IReadOnlyDictionary<string, string> Environment,
    string? Fallback = null,
    IReadOnlyList<string>? CovibeCommand = null,
    string? BoxId = null,
    Covibe.Execution.BoxLaunch? Box = null,
    string? RemoteDirectory = null);

/// <summary>A request for a place the member may not use, or that does not exist: <see cref="Field"/> names the request field.</summary>
public sealed class PlacementException(string field, string message) : Exception(message)
{
    public string Field { get; } = field;
}

/// <summary>Nowhere to run it now (the container engine is down and no fallback is allowed): <see cref="Type"/> is the problem type.</summary>
public sealed class PlacementUnavailableException(string type, string message) : Exception(message)
{
    public string Type { get; } = type;
}
