using Covibe.Protocol;
using Covibe.Server.Features.Auth;

namespace Covibe.Server.Features.Vms;

/// <summary>
/// VMs whose runner dials out (seed 001's polling and tunnel strategies), as the VM API needs them: the runners' feature
/// (above VMs) registers one and lets go of one that was removed, so VMs never reach into runners.
/// </summary>
public interface IRunnerVms
{
    /// <summary>
    /// Adds a runner VM for <paramref name="caller"/>; the answer carries, once, the registration token and the command to run
    /// on the VM (which dials <paramref name="serverOrigin"/> unless the server has a public URL). Throws
    /// <see cref="Http.RequestRefusedException"/> for a request that names a host or credential.
    /// </summary>
    Task<VmDto> RegisterAsync(RegisterVmRequest request, Caller caller, string serverOrigin, CancellationToken cancellationToken);

    /// <summary>The VM was removed: its runner's connection ends now.</summary>
    void Removed(string vmId);
}
