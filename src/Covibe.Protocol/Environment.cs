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
