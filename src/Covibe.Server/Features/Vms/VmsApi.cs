using Covibe.Execution;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Auth;
using Covibe.Server.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Covibe.Execution.Ssh;

namespace Covibe.Server.Features.Vms;

/// <summary>Seed 001's <c>POST /api/vm/register</c> and <c>PUT /api/vm/update</c>, plus list and removal.</summary>
public static class VmsApi
{
    public static IServiceCollection AddVms(this IServiceCollection services)
    {
        services.AddOptions<VmsOptions>().BindConfiguration(VmsOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton(sp => new SshClient(Path.Combine(sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<Hosting.ServerOptions>>().Value.DataDirectory, "ssh")));
        services.AddSingleton<VmHealth>();
        services.AddSingleton<VmPool>();
        services.AddSingleton<VmConnector>();
        services.AddSingleton<VmAuditLog>();
        services.AddSingleton<Secrets.ISealedSecrets, VmCredentials>();
        services.AddSingleton<VmEvents>();
        services.AddSingleton<VmService>();
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
    public static async Task<Ok<VmDto>> Check(string id, Caller caller, CovibeDb db, VmHealth health, VmAuditLog audit, CancellationToken cancellationToken)
    {
        var vm = await VmService.FindOwnedAsync(db, caller, id, "check it; its status is in GET /api/vm/list", cancellationToken);
        if (vm.IsRunner)
        {
            return TypedResults.Ok(vm.ToDto(caller.Name, isOwner: true)); // its runner reports by itself
        }
        await audit.WriteAsync(vm.Id, vm.TeamId, VmAuditLog.Member, caller.UserId, "ssh.check", null, cancellationToken);
        var checkedVm = await health.CheckAsync(id, cancellationToken);
        return TypedResults.Ok(checkedVm!.ToDto(caller.Name, isOwner: true));
    }

    public static async Task<Created<VmDto>> Register(RegisterVmRequest request, Caller caller, VmService vms, HttpContext context, CancellationToken cancellationToken) =>
        TypedResults.Created("/api/vm/list", await vms.RegisterAsync(request, caller, context.Request.Origin(), cancellationToken));

    public static async Task<Ok<VmDto>> Update(UpdateVmRequest request, Caller caller, VmService vms, CancellationToken cancellationToken) =>
        TypedResults.Ok(await vms.UpdateAsync(request, caller, cancellationToken));

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

    public static async Task<NoContent> Remove(string id, Caller caller, VmService vms, CancellationToken cancellationToken)
    {
        await vms.RemoveAsync(id, caller, cancellationToken);
        return TypedResults.NoContent();
    }
}
