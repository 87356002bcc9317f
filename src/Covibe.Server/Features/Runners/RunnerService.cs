using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Vms;
using Covibe.Server.Http;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Covibe.Server.Hosting;
using Covibe.Web;
using Covibe.Execution.Ssh;

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
    ILogger<RunnerService> logger) : IRunnerVms
{
    private readonly Lock _pollGate = new();

    /// <summary>A fresh one-time registration token for <paramref name="vm"/> (saved by the caller), and the command that uses it.</summary>
    public RunnerRegistrationDto Issue(Vm vm, string serverOrigin)
    {
        var token = RunnerTokens.NewRegistrationToken();
        vm.RunnerRegistrationHash = RunnerTokens.Hash(token);
        vm.RunnerRegistrationExpiresAt = time.GetUtcNow().UtcDateTime.AddMinutes(options.Value.RegistrationMinutes);
        var server = options.Value.PublicUrl?.TrimEnd('/') ?? serverOrigin;
        return new RunnerRegistrationDto(vm.Id, token, vm.RunnerRegistrationExpiresAt.Value, $"covibe runner --server {server} --token {token}");
    }

    /// <summary>
    /// A VM whose runner dials out (seed 001's polling and tunnel strategies): no host, no key; the answer carries, once, the
    /// one-time registration token and the command to run on the VM.
    /// </summary>
    public async Task<VmDto> RegisterAsync(RegisterVmRequest request, Caller caller, string serverOrigin, CancellationToken cancellationToken)
    {
        var v = new Validator();
        var name = v.Text("name", request.Name, 80);
        if (request.Host is not null || request.PrivateKey is not null || request.Password is not null || request.HostKeyFingerprint is not null)
        {
            v.Fail("connectionType", $"A '{request.ConnectionType}' VM needs no host, key, password or host key: its runner dials out to this server. Leave them out, or use 'ssh_proxy'.");
        }
        if (!v.IsValid)
        {
            throw RequestRefusedException.Invalid(v);
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
        var registration = Issue(vm, serverOrigin);
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        db.Vms.Add(vm);
        await db.SaveChangesAsync(cancellationToken);
        await audit.WriteAsync(vm.Id, vm.TeamId, VmAuditLog.Member, caller.UserId, "vm.register", $"{vm.ConnectionType}; registration token valid until {registration.ExpiresAt:u}, once", cancellationToken);
        return vm.ToDto(caller.Name, isOwner: true) with
        {
            RegistrationToken = registration.RegistrationToken,
            RegistrationExpiresAt = registration.ExpiresAt,
            RunnerCommand = registration.Command,
        };
    }

    public void Removed(string vmId) => hub.Disconnect(vmId, RunnerProtocol.ClosedRevoked, "The VM was removed by its owner.");

    /// <summary>The runner's own credential for a one-time registration token (401 refusals for a bad, used or expired one).</summary>
    public async Task<RunnerRegisterResponse> ExchangeAsync(RunnerRegisterRequest request, CancellationToken cancellationToken)
    {
        if (request.Token is not { Length: > 0 and < 200 } token || !token.StartsWith(RunnerTokens.RegistrationPrefix, StringComparison.Ordinal))
        {
            throw new RequestRefusedException(Refusal.Unauthenticated, "runner-token-invalid", "Registration token refused", "Send the registration token the server gave when the VM was added ('token': cvreg_...).");
        }
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var hash = RunnerTokens.Hash(token);
        var vm = await db.Vms.SingleOrDefaultAsync(v => v.RunnerRegistrationHash == hash, cancellationToken);
        if (vm is null)
        {
            throw new RequestRefusedException(Refusal.Unauthenticated, "runner-token-invalid", "Registration token refused",
                "This registration token is not valid: it was already used, replaced, or never issued. The VM's owner can get a new one (covibe vm token VM, or POST /api/vm/{id}/registration-token).");
        }
        var now = time.GetUtcNow().UtcDateTime;
        if (vm.RunnerRegistrationExpiresAt < now)
        {
            throw new RequestRefusedException(Refusal.Unauthenticated, "runner-token-expired", "Registration token expired",
                $"This registration token expired at {vm.RunnerRegistrationExpiresAt:u}. The VM's owner can get a new one (covibe vm token VM, or POST /api/vm/{{id}}/registration-token).");
        }
        var credential = RunnerTokens.NewCredential();
        vm.RunnerRegistrationHash = null;
        vm.RunnerRegistrationExpiresAt = null;
        vm.RunnerCredentialHash = RunnerTokens.Hash(credential);
        vm.RunnerPreviousCredentialHash = null;
        vm.RunnerHostname = PrintableText.OfOptional(request.Hostname);
        vm.RunnerVersion = PrintableText.OfOptional(request.Version);
        if (PrintableText.OfOptional(request.User) is { Length: > 0 } user)
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
        return new RunnerRegisterResponse(vm.Id, vm.Name, credential, options.Value.HeartbeatSeconds, options.Value.LeaseSeconds);
    }

    /// <summary>The runner VM <paramref name="credential"/> (a request's bearer token) belongs to; a 401 refusal for any other.</summary>
    public async Task<Vm> AuthenticateAsync(string? credential, CancellationToken cancellationToken)
    {
        var refusal = new RequestRefusedException(Refusal.Unauthenticated, "runner-credential-invalid", "Runner credential refused",
            "Send the runner's own credential (the one `covibe runner` saved when it registered) as a bearer token. A revoked, replaced or unknown credential is refused: register the runner again with a new registration token.");
        if (credential is null)
        {
            throw refusal;
        }
        var hash = RunnerTokens.Hash(credential);
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var vm = await db.Vms.SingleOrDefaultAsync(v => v.RunnerCredentialHash == hash || v.RunnerPreviousCredentialHash == hash, cancellationToken);
        if (vm is null || !vm.IsRunner)
        {
            throw refusal;
        }
        if (vm.RunnerCredentialHash == hash && vm.RunnerPreviousCredentialHash is not null)
        {
            // The new credential is in use: the rotation is complete and the old one stops working.
            vm.RunnerPreviousCredentialHash = null;
            await db.SaveChangesAsync(cancellationToken);
            await audit.WriteAsync(vm.Id, vm.TeamId, VmAuditLog.Runner, null, "credential.rotated", "the new credential is in use; the old one no longer works", cancellationToken);
        }
        return vm;
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
        var session = RunnerSession.OverPolls(vm.Id, vm.TeamId, vm.UserId, Tokens.NewId(), time.GetUtcNow().UtcDateTime);
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

}

public static class RunnerStatuses
{
    public const string Revoked = "revoked";
}
