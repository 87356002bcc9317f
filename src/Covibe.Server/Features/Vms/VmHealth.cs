using System.Security.Cryptography;
using Covibe.Execution;
using Covibe.Server.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Covibe.Execution.Ssh;

namespace Covibe.Server.Features.Vms;

/// <summary><c>Covibe:Vms</c>.</summary>
public sealed class VmsOptions
{
    public const string Section = "Covibe:Vms";

    /// <summary>How often every VM is checked (an SSH round trip over the shared connection).</summary>
    [System.ComponentModel.DataAnnotations.Range(5, 86_400)]
    public int HealthCheckSeconds { get; set; } = 60;

    /// <summary>Seed 000's pool of shared VMs (<c>VM_INSTANCES_FILE</c>); read at start-up if it exists.</summary>
    public string InstancesFile { get; set; } = Path.Combine("config", "vm-instances.json");
}

/// <summary>
/// Keeps each VM's status current: it logs in over SSH (key from the encrypted store, through the
/// server's ssh-agent; host key pinned) and runs <c>true</c>. Online with a last-seen time, or
/// offline with what went wrong in words the owner can act on.
/// </summary>
public sealed class VmHealth(
    IDbContextFactory<CovibeDb> dbs,
    VmConnector connector,
    SshClient ssh,
    VmEvents events,
    IOptions<VmsOptions> options,
    TimeProvider time,
    ILogger<VmHealth> logger) : BackgroundService
{
    public const string Online = "online";
    public const string Offline = "offline";

    public async Task<Vm?> CheckAsync(string vmId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var vm = await db.Vms.SingleOrDefaultAsync(v => v.Id == vmId, cancellationToken);
        if (vm is null)
        {
            return null;
        }
        var (online, error) = await ProbeAsync(vm, cancellationToken);
        var was = vm.Status;
        vm.Status = online ? Online : Offline;
        vm.LastError = error;
        if (online)
        {
            vm.LastSeen = time.GetUtcNow().UtcDateTime;
        }
        await db.SaveChangesAsync(cancellationToken);
        if (was != vm.Status)
        {
            await events.UpdatedAsync(vm.Id, cancellationToken);
        }
        VmsLog.Checked(logger, vm.Id, vm.Status);
        return vm;
    }

    private async Task<(bool Online, string? Error)> ProbeAsync(Vm vm, CancellationToken cancellationToken)
    {
        try
        {
            var target = await connector.ConnectAsync(vm.Id, cancellationToken);
            var result = await ssh.RunAsync(target, ["true"], null, TimeSpan.FromSeconds(20), cancellationToken);
            return result.ExitCode == 0 ? (true, null) : (false, SshClient.Explain(result, target));
        }
        catch (Exception e) when (e is SshException or CryptographicException or IOException)
        {
            return (false, e.Message);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.Value.HealthCheckSeconds), time);
        do
        {
            List<string> ids;
            await using (var db = await dbs.CreateDbContextAsync(stoppingToken))
            {
                // Runner VMs report by themselves (their connection and heartbeats).
                ids = await db.Vms.Where(Vm.OverSsh).Select(v => v.Id).ToListAsync(stoppingToken);
            }
            foreach (var id in ids)
            {
                try
                {
                    await CheckAsync(id, stoppingToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    VmsLog.CheckFailed(logger, id, e);
                }
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}

internal static partial class VmsLog
{
    [LoggerMessage(4001, LogLevel.Debug, "VM {VmId} checked: {Status}")]
    public static partial void Checked(ILogger logger, string vmId, string status);

    [LoggerMessage(4002, LogLevel.Warning, "Checking VM {VmId} failed")]
    public static partial void CheckFailed(ILogger logger, string vmId, Exception exception);
}
