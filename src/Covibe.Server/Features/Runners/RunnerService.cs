using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Vms;
using Covibe.Server.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Covibe.Server.Hosting;

namespace Covibe.Server.Features.Runners;

/// <summary>
/// A runner's credentials: the one-time registration token a member gets for a runner VM, exchanged by the runner for its
/// own credential (stored here only as a hash), rotated without downtime (the old one works until the new one is first
/// used), revoked at once by the VM's owner.
/// </summary>
public sealed class RunnerService(
    IDbContextFactory<CovibeDb> dbs,
    RunnerHub hub,
    VmAuditLog audit,
    IOptions<RunnersOptions> options,
    TimeProvider time,
    ILogger<RunnerService> logger)
{
    private readonly Lock _pollGate = new();

    /// <summary>A fresh one-time registration token for <paramref name="vm"/> (saved by the caller), and the command that uses it.</summary>
    public RunnerRegistrationDto Issue(Vm vm, HttpRequest request)
    {
        var token = RunnerTokens.NewRegistrationToken();
        vm.RunnerRegistrationHash = RunnerTokens.Hash(token);
        vm.RunnerRegistrationExpiresAt = time.GetUtcNow().UtcDateTime.AddMinutes(options.Value.RegistrationMinutes);
        var server = options.Value.PublicUrl?.TrimEnd('/') ?? $"{request.Scheme}://{request.Host}";
        return new RunnerRegistrationDto(vm.Id, token, vm.RunnerRegistrationExpiresAt.Value, $"covibe runner --server {server} --token {token}");
    }

    /// <summary>
    /// A VM whose runner dials out (seed 001's polling and tunnel strategies): no host, no key; the answer carries, once, the
    /// one-time registration token and the command to run on the VM.
    /// </summary>
    public async Task<Results<Created<VmDto>, ProblemHttpResult>> RegisterVmAsync(RegisterVmRequest request, Caller caller, CovibeDb db, HttpContext context, CancellationToken cancellationToken)
    {
        var v = new Validator();
        var name = v.Text("name", request.Name, 80);
        if (request.Host is not null || request.PrivateKey is not null || request.Password is not null || request.HostKeyFingerprint is not null)
        {
            v.Fail("connectionType", $"A '{request.ConnectionType}' VM needs no host, key, password or host key: its runner dials out to this server. Leave them out, or use 'ssh_proxy'.");
        }
        if (!v.IsValid)
        {
            return Problems.ValidationAsProblem(v.Errors);
        }
        var now = time.GetUtcNow().UtcDateTime;
        var vm = new Vm
        {
            Id = Tokens.NewId(),
            TeamId = caller.TeamId,
            UserId = caller.UserId,
            Name = name,
            Host = "",
            Port = 0,
            Username = "",
            AuthMethod = "runner",
            Credential = "",
            HostKeys = "",
            HostKeyFingerprint = "",
            ConnectionType = request.ConnectionType!,
            Status = "unknown",
            LastError = "Waiting for its runner: run the command shown at registration on the VM.",
            CreatedAt = now,
            UpdatedAt = now,
        };
        var registration = Issue(vm, context.Request);
        db.Vms.Add(vm);
        await db.SaveChangesAsync(cancellationToken);
        await audit.WriteAsync(vm.Id, vm.TeamId, VmAuditLog.Member, caller.UserId, "vm.register", $"{vm.ConnectionType}; registration token valid until {registration.ExpiresAt:u}, once", cancellationToken);
        return TypedResults.Created($"/api/vm/list", vm.ToDto(caller.Name, isOwner: true) with
        {
            RegistrationToken = registration.RegistrationToken,
            RegistrationExpiresAt = registration.ExpiresAt,
            RunnerCommand = registration.Command,
        });
    }

    public async Task<Results<Ok<RunnerRegisterResponse>, ProblemHttpResult>> ExchangeAsync(RunnerRegisterRequest request, CancellationToken cancellationToken)
    {
        if (request.Token is not { Length: > 0 and < 200 } token || !token.StartsWith(RunnerTokens.RegistrationPrefix, StringComparison.Ordinal))
        {
            return Problems.Create(401, "runner-token-invalid", "Registration token refused", "Send the registration token the server gave when the VM was added ('token': cvreg_...).");
        }
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var hash = RunnerTokens.Hash(token);
        var vm = await db.Vms.SingleOrDefaultAsync(v => v.RunnerRegistrationHash == hash, cancellationToken);
        if (vm is null)
        {
            return Problems.Create(401, "runner-token-invalid", "Registration token refused",
                "This registration token is not valid: it was already used, replaced, or never issued. The VM's owner can get a new one (covibe vm token VM, or POST /api/vm/{id}/registration-token).");
        }
        var now = time.GetUtcNow().UtcDateTime;
        if (vm.RunnerRegistrationExpiresAt < now)
        {
            return Problems.Create(401, "runner-token-expired", "Registration token expired",
                $"This registration token expired at {vm.RunnerRegistrationExpiresAt:u}. The VM's owner can get a new one (covibe vm token VM, or POST /api/vm/{{id}}/registration-token).");
        }
        var credential = RunnerTokens.NewCredential();
        vm.RunnerRegistrationHash = null;
        vm.RunnerRegistrationExpiresAt = null;
        vm.RunnerCredentialHash = RunnerTokens.Hash(credential);
        vm.RunnerPreviousCredentialHash = null;
        vm.RunnerHostname = Clip(request.Hostname);
        vm.RunnerVersion = Clip(request.Version);
        if (Clip(request.User) is { Length: > 0 } user)
        {
            vm.Username = user;
        }
        vm.Status = VmHealth.Offline;
        vm.LastError = "Registered; waiting for the runner to connect.";
        vm.UpdatedAt = now;
        await db.SaveChangesAsync(cancellationToken);
        // A runner registered again replaces the one before: that one's connection ends now.
        hub.Disconnect(vm.Id, RunnerProtocol.ClosedRevoked, "The runner was registered again.");
        await audit.WriteAsync(vm.Id, vm.TeamId, VmAuditLog.Runner, null, "runner.register", $"{vm.Username}@{vm.RunnerHostname}, covibe {vm.RunnerVersion}", cancellationToken);
        RunnersLog.Registered(logger, vm.Id);
        return TypedResults.Ok(new RunnerRegisterResponse(vm.Id, vm.Name, credential, options.Value.HeartbeatSeconds, options.Value.LeaseSeconds));
    }

    /// <summary>The runner VM a request's bearer credential belongs to, or the 401 to answer.</summary>
    public async Task<(Vm? Vm, ProblemHttpResult? Refusal)> AuthenticateAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var refusal = Problems.Create(401, "runner-credential-invalid", "Runner credential refused",
            "Send the runner's own credential (the one `covibe runner` saved when it registered) as a bearer token. A revoked, replaced or unknown credential is refused: register the runner again with a new registration token.");
        if (RunnerTokens.FromRequest(request) is not { } credential)
        {
            return (null, refusal);
        }
        var hash = RunnerTokens.Hash(credential);
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var vm = await db.Vms.SingleOrDefaultAsync(v => v.RunnerCredentialHash == hash || v.RunnerPreviousCredentialHash == hash, cancellationToken);
        if (vm is null || !vm.IsRunner)
        {
            return (null, refusal);
        }
        if (vm.RunnerCredentialHash == hash && vm.RunnerPreviousCredentialHash is not null)
        {
            // The new credential is in use: the rotation is complete and the old one stops working.
            vm.RunnerPreviousCredentialHash = null;
            await db.SaveChangesAsync(cancellationToken);
            await audit.WriteAsync(vm.Id, vm.TeamId, VmAuditLog.Runner, null, "credential.rotated", "the new credential is in use; the old one no longer works", cancellationToken);
        }
        return (vm, null);
    }

    /// <summary>A new credential for the runner; the one it used for this request keeps working until the new one is first used.</summary>
    public async Task<RunnerRotateResponse> RotateAsync(Vm vm, string current, CancellationToken cancellationToken)
    {
        var credential = RunnerTokens.NewCredential();
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var row = await db.Vms.SingleAsync(v => v.Id == vm.Id, cancellationToken);
        row.RunnerPreviousCredentialHash = RunnerTokens.Hash(current);
        row.RunnerCredentialHash = RunnerTokens.Hash(credential);
        row.UpdatedAt = time.GetUtcNow().UtcDateTime;
        await db.SaveChangesAsync(cancellationToken);
        await audit.WriteAsync(vm.Id, vm.TeamId, VmAuditLog.Runner, null, "credential.rotate", "a new credential was issued; the old one works until the new one is used", cancellationToken);
        return new RunnerRotateResponse(credential);
    }

    /// <summary>The long-polling session <paramref name="pollId"/> of the runner, or a new one (the runner then says hello again).</summary>
    public async Task<RunnerSession> PollSessionAsync(Vm vm, string? pollId, CancellationToken cancellationToken)
    {
        lock (_pollGate)
        {
            if (hub.SessionOf(vm.Id) is { PollId: { } id } current && id == pollId && !current.Closed.IsCancellationRequested)
            {
                current.LastPoll = time.GetUtcNow().UtcDateTime;
                return current;
            }
        }
        var session = new RunnerSession(vm.Id, vm.TeamId, vm.UserId, "poll") { PollId = Tokens.NewId(), LastPoll = time.GetUtcNow().UtcDateTime };
        await hub.AttachAsync(session, cancellationToken);
        _ = WatchPollsAsync(session);
        return session;
    }

    public void Polled(RunnerSession session) => session.LastPoll = time.GetUtcNow().UtcDateTime;

    /// <summary>A polling runner that stops polling has gone, as a closed socket would say.</summary>
    private async Task WatchPollsAsync(RunnerSession session)
    {
        var quiet = TimeSpan.FromSeconds(options.Value.PollWaitSeconds + 15);
        try
        {
            while (!session.Closed.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromSeconds(1), time, session.Closed);
                if (time.GetUtcNow().UtcDateTime - session.LastPoll > quiet)
                {
                    break;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        await hub.DetachAsync(session);
        await audit.WriteAsync(session.VmId, session.TeamId, VmAuditLog.Runner, null, "runner.disconnect", session.CloseReason ?? "stopped polling", CancellationToken.None);
        session.Dispose();
    }

    // The owner's side: POST /api/vm/{id}/registration-token, /revoke, /rotate; GET /api/vm/{id}/audit.

    public static async Task<Results<Ok<RunnerRegistrationDto>, ProblemHttpResult>> RegistrationTokenAsync(
        string id, Caller caller, CovibeDb db, RunnerService runners, VmAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var (vm, refusal) = await OwnedRunnerAsync(db, caller, id, "get a registration token for it", cancellationToken);
        if (vm is null)
        {
            return refusal!;
        }
        var registration = runners.Issue(vm, context.Request);
        await db.SaveChangesAsync(cancellationToken);
        await audit.WriteAsync(vm.Id, vm.TeamId, VmAuditLog.Member, caller.UserId, "registration-token.issue", $"valid until {registration.ExpiresAt:u}, once", cancellationToken);
        return TypedResults.Ok(registration);
    }

    public static async Task<Results<Ok<VmDto>, ProblemHttpResult>> RevokeAsync(
        string id, Caller caller, CovibeDb db, RunnerHub hub, VmAuditLog audit, VmEvents vmEvents, TimeProvider time, CancellationToken cancellationToken)
    {
        var (vm, refusal) = await OwnedRunnerAsync(db, caller, id, "revoke its runner", cancellationToken);
        if (vm is null)
        {
            return refusal!;
        }
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
        var (vm, refusal) = await OwnedRunnerAsync(db, caller, id, "rotate its runner's credential", cancellationToken);
        if (vm is null)
        {
            return refusal!;
        }
        if (hub.SessionOf(vm.Id) is not { } session || !session.Send(new RunnerMessage(RunnerProtocol.Rotate)))
        {
            return Problems.Conflict("runner-offline", "Runner not connected",
                "The VM's runner is not connected, so it cannot rotate its credential now. Start it, or revoke it and register it again.");
        }
        await audit.WriteAsync(vm.Id, vm.TeamId, VmAuditLog.Member, caller.UserId, "credential.rotate-request", null, cancellationToken);
        return TypedResults.Accepted($"/api/vm/{vm.Id}/audit");
    }

    public static async Task<Results<Ok<VmAuditDto[]>, ProblemHttpResult>> AuditAsync(string id, Caller caller, CovibeDb db, CancellationToken cancellationToken)
    {
        var vm = await db.Vms.AsNoTracking().SingleOrDefaultAsync(v => v.Id == id && v.TeamId == caller.TeamId, cancellationToken);
        if (vm is null)
        {
            return Problems.NotFound("VM", $"Your team has no VM '{id}'. List them with GET /api/vm/list.");
        }
        if (vm.UserId != caller.UserId)
        {
            return Problems.Forbidden("Only the VM's owner can read its audit log.");
        }
        var rows = await (from a in db.VmAudit
                          where a.VmId == id
                          join u in db.Users on a.ActorId equals u.Id into users
                          from u in users.DefaultIfEmpty()
                          orderby a.Id descending
                          select new VmAuditDto(a.Id, a.At, a.Actor, u == null ? null : u.Name, a.Action, a.Detail)).Take(1000).ToArrayAsync(cancellationToken);
        return TypedResults.Ok(rows);
    }

    private static async Task<(Vm? Vm, ProblemHttpResult? Refusal)> OwnedRunnerAsync(CovibeDb db, Caller caller, string id, string action, CancellationToken cancellationToken)
    {
        var vm = await db.Vms.SingleOrDefaultAsync(v => v.Id == id && v.TeamId == caller.TeamId, cancellationToken);
        return vm is null ? (null, Problems.NotFound("VM", $"Your team has no VM '{id}'. List them with GET /api/vm/list."))
            : vm.UserId != caller.UserId ? (null, Problems.Forbidden($"Only the VM's owner can {action}."))
            : !vm.IsRunner ? (null, Problems.Conflict("not-a-runner-vm", "Not a runner VM", $"'{vm.Name}' is reached over SSH (connectionType {vm.ConnectionType}); it has no runner."))
            : (vm, null);
    }

    private static string? Clip(string? value) => value is null ? null : Validator.Printable(value);
}

public static class RunnerStatuses
{
    public const string Revoked = "revoked";
}
