using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Covibe.Execution;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Secrets;
using Covibe.Server.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Covibe.Server.Hosting;

namespace Covibe.Server.Features.Vms;

/// <summary>Seed 001's <c>POST /api/vm/register</c> and <c>PUT /api/vm/update</c>, plus list and removal.</summary>
public static partial class VmsApi
{
    public static IServiceCollection AddVms(this IServiceCollection services)
    {
        services.AddOptions<VmsOptions>().BindConfiguration(VmsOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton(sp => new SshClient(Path.Combine(sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<Hosting.ServerOptions>>().Value.DataDirectory, "ssh")));
        services.AddSingleton<VmHealth>();
        services.AddSingleton<VmPool>();
        services.AddSingleton<VmConnector>();
        services.AddSingleton<VmAuditLog>();
        services.AddSingleton<VmCredentials>();
        services.AddSingleton<VmEvents>();
        services.AddHostedService(sp => sp.GetRequiredService<VmHealth>());
        return services;
    }

    public static IEndpointRouteBuilder MapVmsApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/vm").WithTags("VMs").RequireAuthorization();
        api.MapPost("/register", Register);
        api.MapPut("/update", Update);
        api.MapGet("/list", List);
        api.MapDelete("/{id}", Remove);
        api.MapPost("/{id}/check", Check);
        api.MapGet("/pool", Pool);
        api.MapPost("/assign", Assign);
        api.MapDelete("/assign", Release);
        return app;
    }

    /// <summary>The operator's shared VMs and how many members each serves.</summary>
    public static async Task<Ok<PoolVmDto[]>> Pool(VmPool pool, CancellationToken cancellationToken) =>
        TypedResults.Ok(await pool.ListAsync(cancellationToken));

    /// <summary>Seed 000's <c>assignVMToUser</c>: your pool VM (the same one every time until released).</summary>
    public static async Task<Results<Ok<VmAssignmentDto>, ProblemHttpResult>> Assign(Caller caller, VmPool pool, CancellationToken cancellationToken)
    {
        if (pool.Instances.Count == 0)
        {
            return Problems.NotFound("VM pool", "This server has no pool of shared VMs (config/vm-instances.json). Register your own VM with POST /api/vm/register.");
        }
        return await pool.AssignAsync(caller.UserId, cancellationToken) is { } assignment
            ? TypedResults.Ok(assignment)
            : Problems.Conflict("no-vm-available", "No VM available",
                $"All {pool.Instances.Count} VMs of the pool are full or not available. Try again later, ask the operator to add instances to the pool file, or register your own VM.");
    }

    public static async Task<NoContent> Release(Caller caller, VmPool pool, CancellationToken cancellationToken)
    {
        await pool.ReleaseAsync(caller.UserId, cancellationToken);
        return TypedResults.NoContent();
    }

    /// <summary>Checks the VM now (an SSH login) and answers with its status; the owner only.</summary>
    public static async Task<Results<Ok<VmDto>, ProblemHttpResult>> Check(string id, Caller caller, CovibeDb db, VmHealth health, VmAuditLog audit, CancellationToken cancellationToken)
    {
        var (vm, refusal) = await FindOwnedAsync(db, caller, id, "check it; its status is in GET /api/vm/list", cancellationToken);
        if (vm is null)
        {
            return refusal!;
        }
        if (vm.IsRunner)
        {
            return TypedResults.Ok(vm.ToDto(caller.Name, isOwner: true)); // its runner reports by itself
        }
        await audit.WriteAsync(vm.Id, vm.TeamId, VmAuditLog.Member, caller.UserId, "ssh.check", null, cancellationToken);
        var checkedVm = await health.CheckAsync(id, cancellationToken);
        return TypedResults.Ok(checkedVm!.ToDto(caller.Name, isOwner: true));
    }

    public static async Task<Results<Created<VmDto>, ProblemHttpResult>> Register(
        RegisterVmRequest request, Caller caller, CovibeDb db, SecretBox secrets, VmConnector connector, SshClient ssh, IRunnerVms runners, VmAuditLog audit,
        HttpContext context, TimeProvider time, CancellationToken cancellationToken)
    {
        if (request.ConnectionType is Vm.Polling or Vm.Tunnel)
        {
            return TypedResults.Created("/api/vm/list", await runners.RegisterAsync(request, caller, context.Request.Origin(), cancellationToken));
        }
        var v = new Validator();
        var name = v.Text("name", request.Name, 80);
        var host = Host(v, request.Host);
        var port = Port(v, request.Port);
        var username = User(v, request.Username);
        var (method, credential) = Credential(v, request.PrivateKey, request.Password, required: true);
        if (request.ConnectionType is not (null or Vm.SshProxy))
        {
            v.Fail("connectionType", "'connectionType' must be 'ssh_proxy' (the server logs in over SSH), or 'polling' or 'tunnel' (the VM runs `covibe runner`, which dials out to the server).");
        }
        if (!v.IsValid)
        {
            return Problems.ValidationAsProblem(v.Errors);
        }
        var (keys, fingerprint, refusal) = await SshVmChecks.ConfirmHostKeyAsync(host, port, request.HostKeyFingerprint, cancellationToken);
        if (refusal is not null)
        {
            return refusal;
        }
        var id = Hosting.Tokens.NewId();
        var knownHosts = string.Join('\n', keys!.Select(k => k.KnownHostsLine));
        // A wrong key or password is the owner's to fix now, not a status that turns offline a minute later.
        if (await SshVmChecks.LoginProblemAsync(connector, ssh, new SshTarget(id, host, port, username, knownHosts), method!, credential!, cancellationToken) is { } loginRefusal)
        {
            CryptographicOperations.ZeroMemory(credential!);
            return loginRefusal;
        }
        var now = time.GetUtcNow().UtcDateTime;
        var vm = new Vm
        {
            Id = id,
            TeamId = caller.TeamId,
            UserId = caller.UserId,
            Name = name,
            Host = host,
            Port = port,
            Username = username,
            AuthMethod = method!,
            Credential = "",
            HostKeys = knownHosts,
            HostKeyFingerprint = fingerprint!,
            Status = VmHealth.Online,
            LastSeen = now,
            CreatedAt = now,
            UpdatedAt = now,
        };
        vm.Credential = Seal(secrets, vm, credential!);
        db.Vms.Add(vm);
        await db.SaveChangesAsync(cancellationToken);
        await audit.WriteAsync(vm.Id, vm.TeamId, VmAuditLog.Member, caller.UserId, "vm.register", $"ssh {vm.Username}@{vm.Host}:{vm.Port}, {vm.AuthMethod}, host key {vm.HostKeyFingerprint}; login checked", cancellationToken);
        return TypedResults.Created($"/api/vm/list", vm.ToDto(caller.Name, isOwner: true));
    }

    public static async Task<Results<Ok<VmDto>, ProblemHttpResult>> Update(
        UpdateVmRequest request, Caller caller, CovibeDb db, SecretBox secrets, VmConnector connector, SshClient ssh, VmAuditLog audit, TimeProvider time, CancellationToken cancellationToken)
    {
        var (vm, refusal) = await FindOwnedAsync(db, caller, request.Id, "change it", cancellationToken);
        if (vm is null)
        {
            return refusal!;
        }
        var v = new Validator();
        var name = request.Name is null ? vm.Name : v.Text("name", request.Name, 80);
        if (vm.IsRunner && (request.Host ?? request.Username ?? request.PrivateKey ?? request.Password ?? request.HostKeyFingerprint) is not null || vm.IsRunner && request.Port is not null)
        {
            v.Fail("id", "A runner VM has only a name to change: its runner dials out, with its own credential (rotate or revoke it instead).");
        }
        var host = request.Host is null ? vm.Host : Host(v, request.Host);
        var port = request.Port is null ? vm.Port : Port(v, request.Port);
        var username = request.Username is null ? vm.Username : User(v, request.Username);
        var (method, credential) = Credential(v, request.PrivateKey, request.Password, required: false);
        if (!v.IsValid)
        {
            return Problems.ValidationAsProblem(v.Errors);
        }
        var (hostKeys, hostKeyFingerprint) = (vm.HostKeys, vm.HostKeyFingerprint);
        if (host != vm.Host || port != vm.Port || request.HostKeyFingerprint is not null)
        {
            var (keys, fingerprint, hostKeyRefusal) = await SshVmChecks.ConfirmHostKeyAsync(host, port, request.HostKeyFingerprint, cancellationToken);
            if (hostKeyRefusal is not null)
            {
                return hostKeyRefusal;
            }
            (hostKeys, hostKeyFingerprint) = (string.Join('\n', keys!.Select(k => k.KnownHostsLine)), fingerprint!);
        }
        var now = time.GetUtcNow().UtcDateTime;
        if (credential is not null || host != vm.Host || port != vm.Port || username != vm.Username)
        {
            // Where or how it logs in changed: check the login before keeping it.
            var login = credential ?? secrets.Open(vm.Credential, vm.UserId, $"{Vm.CredentialPurpose}:{vm.Id}");
            try
            {
                if (await SshVmChecks.LoginProblemAsync(connector, ssh, new SshTarget(vm.Id, host, port, username, hostKeys), method ?? vm.AuthMethod, login, cancellationToken) is { } loginRefusal)
                {
                    return loginRefusal;
                }
            }
            finally
            {
                if (credential is null)
                {
                    CryptographicOperations.ZeroMemory(login);
                }
            }
            (vm.Status, vm.LastSeen, vm.LastError) = (VmHealth.Online, now, null);
        }
        (vm.HostKeys, vm.HostKeyFingerprint) = (hostKeys, hostKeyFingerprint);
        (vm.Name, vm.Host, vm.Port, vm.Username) = (name, host, port, username);
        if (credential is not null)
        {
            vm.AuthMethod = method!;
            vm.Credential = Seal(secrets, vm, credential);
        }
        vm.UpdatedAt = now;
        await db.SaveChangesAsync(cancellationToken);
        var changed = string.Join(", ", new[]
        {
            request.Name is not null ? "name" : null, request.Host is not null ? "host" : null, request.Port is not null ? "port" : null,
            request.Username is not null ? "user" : null, credential is not null ? $"credential ({method})" : null, request.HostKeyFingerprint is not null ? $"host key {vm.HostKeyFingerprint}" : null,
        }.OfType<string>());
        await audit.WriteAsync(vm.Id, vm.TeamId, VmAuditLog.Member, caller.UserId, "vm.update", changed.Length > 0 ? changed : "nothing", cancellationToken);
        return TypedResults.Ok(vm.ToDto(caller.Name, isOwner: true));
    }

    public static async Task<Ok<VmDto[]>> List(Caller caller, CovibeDb db, IVmAgents agents, CancellationToken cancellationToken)
    {
        var rows = await (from vm in db.Vms
                          join u in db.Users on vm.UserId equals u.Id
                          where vm.TeamId == caller.TeamId
                          orderby vm.CreatedAt
                          select new { vm, u.Name }).AsNoTracking().ToListAsync(cancellationToken);
        var running = await agents.CountRunningAsync([.. rows.Select(r => r.vm.Id)], cancellationToken);
        return TypedResults.Ok(rows.Select(r => r.vm.ToDto(r.Name, r.vm.UserId == caller.UserId) with { AgentsRunning = running.GetValueOrDefault(r.vm.Id) }).ToArray());
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> Remove(string id, Caller caller, CovibeDb db, IRunnerVms runners, VmAuditLog audit, CancellationToken cancellationToken)
    {
        var (vm, refusal) = await FindOwnedAsync(db, caller, id, "remove it", cancellationToken);
        if (vm is null)
        {
            return refusal!;
        }
        db.Vms.Remove(vm);
        await db.SaveChangesAsync(cancellationToken);
        // Its runner (if it has one) loses its credential with the row: end its connection now too.
        runners.Removed(vm.Id);
        await audit.WriteAsync(vm.Id, vm.TeamId, VmAuditLog.Member, caller.UserId, "vm.remove", null, cancellationToken);
        return TypedResults.NoContent();
    }

    /// <summary>A VM of the caller's team that the caller owns, or the refusal (404, or 403 for a teammate's).</summary>
    private static async Task<(Vm? Vm, ProblemHttpResult? Refusal)> FindOwnedAsync(CovibeDb db, Caller caller, string? id, string action, CancellationToken cancellationToken)
    {
        var vm = await db.Vms.SingleOrDefaultAsync(x => x.Id == id && x.TeamId == caller.TeamId, cancellationToken);
        return vm is null ? (null, Problems.NotFound("VM", $"Your team has no VM '{id}'. List them with GET /api/vm/list."))
            : vm.UserId != caller.UserId ? (null, Problems.Forbidden($"Only the VM's owner can {action}."))
            : (vm, null);
    }

    private static string Seal(SecretBox secrets, Vm vm, byte[] credential)
    {
        try
        {
            return secrets.Seal(credential, vm.UserId, $"{Vm.CredentialPurpose}:{vm.Id}");
        }
        finally
        {
            CryptographicOperations.ZeroMemory(credential);
        }
    }

    private static string Host(Validator v, string? value)
    {
        var host = v.Text("host", value, 253);
        if (host.Length > 0 && !HostName().IsMatch(host))
        {
            v.Fail("host", "'host' must be a host name or IP address (letters, digits, '.', '-', ':'; not starting with '-').");
        }
        return host;
    }

    private static int Port(Validator v, int? value)
    {
        var port = value ?? 22;
        if (port is < 1 or > 65535)
        {
            v.Fail("port", "'port' must be between 1 and 65535.");
        }
        return port;
    }

    private static string User(Validator v, string? value)
    {
        var user = v.Text("username", value, 32);
        if (user.Length > 0 && !UserName().IsMatch(user))
        {
            v.Fail("username", "'username' must be a Unix user name (letters, digits, '_', '.', '-'; not starting with '-').");
        }
        return user;
    }

    private static (string? Method, byte[]? Credential) Credential(Validator v, string? privateKey, string? password, bool required)
    {
        if (privateKey is not null && password is not null)
        {
            v.Fail("privateKey", "Send either 'privateKey' or 'password', not both.");
            return (null, null);
        }
        if (privateKey is not null)
        {
            if (!privateKey.TrimStart().StartsWith("-----BEGIN", StringComparison.Ordinal) || !privateKey.Contains("PRIVATE KEY-----", StringComparison.Ordinal))
            {
                v.Fail("privateKey", "'privateKey' must be a private key in PEM/OpenSSH form (-----BEGIN ... PRIVATE KEY-----).");
                return (null, null);
            }
            var text = privateKey.Trim() + "\n";
            return ("key", Encoding.UTF8.GetBytes(text));
        }
        if (password is not null)
        {
            if (password.Length is < 1 or > 1024)
            {
                v.Fail("password", "'password' must be 1 to 1024 characters.");
                return (null, null);
            }
            return ("password", Encoding.UTF8.GetBytes(password));
        }
        if (required)
        {
            v.Fail("privateKey", "Send 'privateKey' (recommended) or 'password' for the VM's user.");
        }
        return (null, null);
    }

    [GeneratedRegex(@"^([A-Za-z0-9][A-Za-z0-9.-]*|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*)$")]
    private static partial Regex HostName();

    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_.-]*$")]
    private static partial Regex UserName();
}
