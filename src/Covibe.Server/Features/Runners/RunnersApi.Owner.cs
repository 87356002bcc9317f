using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Vms;
using Covibe.Server.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Covibe.Server.Features.Runners;

/// <summary>The VM owner's side of runners: POST /api/vm/{id}/registration-token, /revoke, /rotate; GET /api/vm/{id}/audit.</summary>
public static partial class RunnersApi
{
    public static async Task<Ok<RunnerRegistrationDto>> RegistrationTokenAsync(
        string id, Caller caller, CovibeDb db, RunnerService runners, VmAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var vm = await OwnedRunnerAsync(db, caller, id, "get a registration token for it", cancellationToken);
        var registration = runners.Issue(vm, context.Request.Origin());
        await db.SaveChangesAsync(cancellationToken);
        await audit.WriteAsync(vm.Id, vm.TeamId, VmAuditLog.Member, caller.UserId, "registration-token.issue", $"valid until {registration.ExpiresAt:u}, once", cancellationToken);
        return TypedResults.Ok(registration);
    }

    public static async Task<Ok<VmDto>> RevokeAsync(
        string id, Caller caller, CovibeDb db, RunnerHub hub, VmAuditLog audit, VmEvents vmEvents, TimeProvider time, CancellationToken cancellationToken)
    {
        var vm = await OwnedRunnerAsync(db, caller, id, "revoke its runner", cancellationToken);
        var now = time.GetUtcNow().UtcDateTime;
        (vm.RunnerCredentialHash, vm.RunnerPreviousCredentialHash, vm.RunnerRegistrationHash, vm.RunnerRegistrationExpiresAt) = (null, null, null, null);
        (vm.Status, vm.LastError, vm.UpdatedAt) = (RunnerStatuses.Revoked, $"Revoked by its owner at {now:u}. Get a new registration token to register a runner again.", now);
        await db.SaveChangesAsync(cancellationToken);
        hub.Disconnect(vm.Id, RunnerProtocol.ClosedRevoked, "This runner was revoked by its VM's owner.");
        await audit.WriteAsync(vm.Id, vm.TeamId, VmAuditLog.Member, caller.UserId, "runner.revoke", "the runner's credential stopped working", cancellationToken);
        await vmEvents.UpdatedAsync(vm.Id, cancellationToken);
        return TypedResults.Ok(vm.ToDto(caller.Name, isOwner: true));
    }

    /// <summary>Asks the connected runner to rotate its credential now (it calls <c>POST /api/runner/rotate</c>, saves the new one, confirms).</summary>
    public static async Task<Results<Accepted, ProblemHttpResult>> RequestRotationAsync(
        string id, Caller caller, CovibeDb db, RunnerHub hub, VmAuditLog audit, CancellationToken cancellationToken)
    {
        var vm = await OwnedRunnerAsync(db, caller, id, "rotate its runner's credential", cancellationToken);
        if (hub.SessionOf(vm.Id) is not { } session || !session.Send(new RunnerMessage(RunnerProtocol.Rotate)))
        {
            return Problems.Conflict("runner-offline", "Runner not connected",
                "The VM's runner is not connected, so it cannot rotate its credential now. Start it, or revoke it and register it again.");
        }
        await audit.WriteAsync(vm.Id, vm.TeamId, VmAuditLog.Member, caller.UserId, "credential.rotate-request", null, cancellationToken);
        return TypedResults.Accepted($"/api/vm/{vm.Id}/audit");
    }

    public static async Task<Ok<VmAuditDto[]>> AuditAsync(string id, Caller caller, CovibeDb db, CancellationToken cancellationToken)
    {
        await VmService.FindOwnedAsync(db, caller, id, "read its audit log", cancellationToken);
        var rows = await (from a in db.VmAudit
                          where a.VmId == id
                          join u in db.Users on a.ActorId equals u.Id into users
                          from u in users.DefaultIfEmpty()
                          orderby a.Id descending
                          select new VmAuditDto(a.Id, a.At, a.Actor, u == null ? null : u.Name, a.Action, a.Detail)).Take(1000).ToArrayAsync(cancellationToken);
        return TypedResults.Ok(rows);
    }

    /// <summary>One of the caller's own VMs that has a runner (refused as <see cref="VmService.FindOwnedAsync"/> does, or 409 for an SSH VM).</summary>
    private static async Task<Vm> OwnedRunnerAsync(CovibeDb db, Caller caller, string id, string action, CancellationToken cancellationToken)
    {
        var vm = await VmService.FindOwnedAsync(db, caller, id, action, cancellationToken);
        return vm.IsRunner ? vm : throw new RequestRefusedException(Refusal.Conflict, "not-a-runner-vm", "Not a runner VM",
            $"'{vm.Name}' is reached over SSH (connectionType {vm.ConnectionType}); it has no runner.");
    }
}
