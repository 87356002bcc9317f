namespace Covibe.Architecture.Tests;

/// <summary>
/// What the landed code broke when the rules were written (issue 23, 2026-12-05). Pay it off and delete the entry (the test
/// says when); never add to it.
/// </summary>
public static class KnownDebt
{
    public static readonly string[] Cycles =
    [
    ];

    public static readonly string[] Internals =
    [
    ];

    public static readonly string[] ServiceLookups =
    [
    ];

    public static readonly string[] ExecutionKnowsFeatures =
    [
        "AgentLaunch",
        "BoxExecBackend",
        "BoxLaunch",
        "ContainerBackend",
        "ContainerSettings",
        "PreviewLaunch",
    ];

    public static readonly string[] TerminalsLibrary =
    [
    ];

    public static readonly string[] PlaceComparisons =
    [
        "Features/Vms/VmCredentials.cs: var envelopes = await db.Vms.Where(v => v.ConnectionType == Vm.SshProxy).Select(v => v.Credential).ToListAsync(cancellationToken);",
        "Features/Vms/VmCredentials.cs: foreach (var vm in await db.Vms.Where(v => v.ConnectionType == Vm.SshProxy).ToListAsync(cancellationToken))",
        "Features/Previews/PreviewJobs.cs: var bridged = placement.Backend == LocalBackend.SandboxedName && sandboxes.InUse?.IsolatesNetwork == true;",
        "Features/Agents/AgentService.cs: if (agent.Backend is SshBackend.BackendName or Runners.RunnerBackend.BackendName)",
        """Features/Boxes/BoxBuilder.cs: if (box.Backend == "vm")""",
        """Features/Boxes/BoxProvisioner.cs: if (box.Backend == "vm")""",
        """Features/Boxes/BoxProvisioner.cs: ready = await db.Boxes.AsNoTracking().Where(b => b.Status == BoxStatuses.Ready && b.Backend == "container").ToListAsync(cancellationToken);""",
        """Features/Boxes/BoxService.cs: if (backend == "container" && await containers.ProblemAsync(cancellationToken) is { } problem)""",
        "Features/Boxes/BoxService.cs: target = connection == Vms.Vm.SshProxy ? vmId",
        """Features/Boxes/BoxVms.cs: var load = await db.Boxes.Where(b => b.Backend == "vm" && b.Target != null && b.Target.StartsWith(VmConnector.PoolPrefix)""",
        """Features/Boxes/PoolService.cs: if (backend is not ("container" or "vm"))""",
        "Features/Previews/PreviewJobs.cs: if (UntrustedFiles.RunningAsRoot && placement.Backend != LocalBackend.BackendName)",
        "Features/Previews/PreviewJobs.cs: var inContainer = placement.Backend == ContainerBackend.BackendName;",
        "Features/Previews/PreviewJobs.cs: var inside = placement.Backend == LocalBackend.BackendName ? files : HostSandbox.Workspace;",
        "Features/Vms/Vm.cs: public bool IsRunner => ConnectionType is Polling or Tunnel;",
        "Features/Vms/VmHealth.cs: ids = await db.Vms.Where(v => v.ConnectionType == Vm.SshProxy).Select(v => v.Id).ToListAsync(stoppingToken);",
        "Features/Vms/VmService.cs: if (request.ConnectionType is Vm.Polling or Vm.Tunnel)",
        "Features/Vms/VmService.cs: if (request.ConnectionType is not (null or Vm.SshProxy))",
    ];
}
