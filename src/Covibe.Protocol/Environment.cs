namespace Covibe.Protocol;

// The team's environment: seed 003's getTeamEnvironmentStatus (docs/api.md).

/// <summary>Memory in bytes and CPUs, as the engine enforces them.</summary>
public sealed record ContainerLimitsDto(long MemoryBytes, double Cpus);

/// <summary>
/// One container of the team: <see cref="Type"/> <c>agent</c>, <c>preview</c> or <c>sync</c> (the team's
/// workspace container, where terminals run); <see cref="Status"/> <c>running</c>, <c>exited</c>,
/// <c>missing</c>; <see cref="Health"/> <c>healthy</c>, <c>starting</c>, <c>unhealthy</c> or <c>none</c>.
/// </summary>
public sealed record ContainerEnvironmentDto(
    string Name,
    string Type,
    string Status,
    string Health,
    int[] Ports,
    ContainerLimitsDto? Limits,
    DateTime? Started,
    string? AgentId);

/// <summary>
/// <see cref="UsesContainers"/>: whether the team's agents and terminals go to containers;
/// <see cref="Engine"/>: <c>ok</c>, <c>unavailable</c> (then <see cref="Problem"/> says why) or <c>off</c>.
/// </summary>
public sealed record TeamEnvironmentResponse(bool UsesContainers, string Engine, string? Problem, ContainerEnvironmentDto[] Containers);

// The team's egress policy (issue 24, docs/api.md): where its code may connect.

/// <summary>
/// A connection the team's egress policy refused: to <see cref="Host"/> (a name asked of the proxy, or an address
/// connected to directly) on <see cref="Port"/>; <see cref="How"/> <c>proxy</c> or <c>direct</c>; <see cref="Count"/>
/// attempts since <see cref="At"/>; <see cref="Message"/> says it in words.
/// </summary>
public sealed record EgressBlockDto(string Host, int Port, string How, int Count, DateTime At, string Message);

/// <summary>
/// <see cref="Mode"/>: the mode in force (<c>open</c>, <c>allowlist</c>, <c>none</c>); <see cref="Chosen"/>: the owner's
/// choice, null when the team follows the operator's <see cref="Default"/>; <see cref="Ceiling"/>: the most open mode the
/// operator allows; <see cref="Allow"/>: the allowlist in force (host names, <c>*.</c> wildcards, IPv4 CIDRs);
/// <see cref="Blocked"/>: the latest refused connections, newest first.
/// </summary>
public sealed record EgressPolicyResponse(string Mode, string? Chosen, string Default, string Ceiling, string[] Allow, EgressBlockDto[] Blocked);

/// <summary>The owner's choice: <see cref="Mode"/> (<c>open</c>, <c>allowlist</c>, <c>none</c>, or null for the operator's default); <see cref="Allow"/>: the team's allowlist (null: the operator's default list).</summary>
public sealed record SetEgressPolicyRequest(string? Mode, string[]? Allow);
