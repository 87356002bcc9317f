using Covibe.Protocol;

namespace Covibe.Server.Features.Vms;

public static class VmMappings
{
    /// <summary>A VM as its owner sees it (where it is, how it signs in) or as a teammate does (name, kind, state).</summary>
    public static VmDto ToDto(this Vm vm, string ownerName, bool isOwner) => isOwner
        ? vm.IsRunner
            ? new VmDto(vm.Id, vm.UserId, ownerName, vm.Name, vm.ConnectionType, vm.Status, vm.LastSeen, true, Username: vm.Username.Length > 0 ? vm.Username : null,
                AuthMethod: vm.AuthMethod, LastError: vm.LastError, LastPoll: vm.LastSeen, RunnerHostname: vm.RunnerHostname)
            : new VmDto(vm.Id, vm.UserId, ownerName, vm.Name, vm.ConnectionType, vm.Status, vm.LastSeen, true,
                vm.Host, vm.Port, vm.Username, vm.AuthMethod, vm.HostKeyFingerprint, vm.LastError)
        : new VmDto(vm.Id, vm.UserId, ownerName, vm.Name, vm.ConnectionType, vm.Status, vm.LastSeen, false, LastPoll: vm.IsRunner ? vm.LastSeen : null);
}
