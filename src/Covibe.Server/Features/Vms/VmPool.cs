using System.Text.Json;
using System.Text.Json.Serialization;
using Covibe.Protocol;
using Covibe.Server.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Vms;

/// <summary>
/// Seed 000's <c>config/vm-instances.json</c>, as documented there; boxes on these VMs (seed 002) also need each
/// instance's <c>username</c>, and its <c>hostKeyFingerprint</c> (<c>SHA256:...</c>, as <c>ssh-keygen -lf</c> prints it) to pin; <c>port</c> defaults to 22.
/// </summary>
public sealed record VmInstancesFile(
    List<VmInstance>? Instances,
    [property: JsonPropertyName("defaultSSHKeyPath")] string? DefaultSshKeyPath,
    int? MaxConnectionsPerVM);

public sealed record VmInstance(
    string? Id,
    string? Host,
    string? Region,
    string? InstanceType,
    string? Status,
    [property: JsonPropertyName("sshKeyPath")] string? SshKeyPath,
    int? MaxUsers,
    int? CurrentUsers,
    string? Username = null,
    int? Port = null,
    string? HostKeyFingerprint = null);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true)]
[JsonSerializable(typeof(VmInstancesFile))]
internal sealed partial class VmPoolJsonContext : JsonSerializerContext;

/// <summary>A member's place on a pool VM (seed 000's user-to-VM assignment).</summary>
public sealed class VmAssignment
{
    public required string UserId { get; init; }
    public required string InstanceId { get; init; }
    public DateTime AssignedAt { get; init; }
}

/// <summary>
/// The operator's shared VMs (seed 000's VM manager): loaded from <c>Covibe:Vms:InstancesFile</c>
/// at start-up (a bad file stops the server, naming what is wrong), and assigned to members so
/// that no VM takes more users than its <c>maxUsers</c> or the pool's <c>maxConnectionsPerVM</c>.
/// </summary>
public sealed class VmPool : IDisposable
{
    private readonly SemaphoreSlim _assigning = new(1, 1);
    private readonly IDbContextFactory<CovibeDb> _dbs;
    private readonly TimeProvider _time;

    public VmPool(IOptions<VmsOptions> options, IDbContextFactory<CovibeDb> dbs, TimeProvider time)
    {
        _dbs = dbs;
        _time = time;
        var path = options.Value.InstancesFile;
        (Instances, MaxConnectionsPerVm, DefaultSshKeyPath) = string.IsNullOrEmpty(path) || !File.Exists(path)
            ? ([], int.MaxValue, null)
            : Load(path);
    }

    public IReadOnlyList<VmInstance> Instances { get; }

    /// <summary>The instance's SSH key file: its own, else the file's default.</summary>
    public string? KeyPathOf(VmInstance instance) => instance.SshKeyPath ?? DefaultSshKeyPath;
    public int MaxConnectionsPerVm { get; }
    public string? DefaultSshKeyPath { get; }

    public static (IReadOnlyList<VmInstance>, int, string?) Load(string path)
    {
        VmInstancesFile? file;
        try
        {
            file = JsonSerializer.Deserialize(File.ReadAllText(path), VmPoolJsonContext.Default.VmInstancesFile);
        }
        catch (JsonException e)
        {
            throw Invalid(path, $"it is not valid JSON ({e.Message})");
        }
        var instances = file?.Instances ?? throw Invalid(path, "'instances' is missing");
        for (var i = 0; i < instances.Count; i++)
        {
            var vm = instances[i];
            if (string.IsNullOrWhiteSpace(vm.Id) || string.IsNullOrWhiteSpace(vm.Host))
            {
                throw Invalid(path, $"instances[{i}] needs 'id' and 'host'");
            }
            if (vm.MaxUsers is < 1)
            {
                throw Invalid(path, $"instances[{i}].maxUsers must be 1 or more");
            }
            if (vm.SshKeyPath is null && file.DefaultSshKeyPath is null)
            {
                throw Invalid(path, $"instances[{i}] has no 'sshKeyPath' and there is no 'defaultSSHKeyPath'");
            }
        }
        if (instances.GroupBy(v => v.Id).FirstOrDefault(g => g.Count() > 1) is { } duplicate)
        {
            throw Invalid(path, $"the id '{duplicate.Key}' is used twice");
        }
        if (file.MaxConnectionsPerVM is < 1)
        {
            throw Invalid(path, "'maxConnectionsPerVM' must be 1 or more");
        }
        return (instances, file.MaxConnectionsPerVM ?? int.MaxValue, file.DefaultSshKeyPath);
    }

    public async Task<PoolVmDto[]> ListAsync(CancellationToken cancellationToken)
    {
        var load = await LoadAsync(cancellationToken);
        return [.. Instances.Select(i => ToDto(i, load))];
    }

    /// <summary>The member's VM: the one already assigned, else the least loaded available one with room; null when none has room.</summary>
    public async Task<VmAssignmentDto?> AssignAsync(string userId, CancellationToken cancellationToken)
    {
        await _assigning.WaitAsync(cancellationToken);
        try
        {
            await using var db = await _dbs.CreateDbContextAsync(cancellationToken);
            var load = await LoadAsync(cancellationToken);
            var existing = await db.VmAssignments.AsNoTracking().SingleOrDefaultAsync(a => a.UserId == userId, cancellationToken);
            if (existing is not null && Instances.FirstOrDefault(i => i.Id == existing.InstanceId) is { } current)
            {
                return new VmAssignmentDto(ToDto(current, load), existing.AssignedAt);
            }
            var choice = Instances
                .Where(i => (i.Status ?? "available") == "available" && Users(i, load) < Capacity(i))
                .OrderBy(i => Users(i, load))
                .FirstOrDefault();
            if (choice is null)
            {
                return null;
            }
            if (existing is not null)
            {
                db.VmAssignments.Remove(existing); // its VM left the pool
            }
            var assignment = new VmAssignment { UserId = userId, InstanceId = choice.Id!, AssignedAt = _time.GetUtcNow().UtcDateTime };
            db.VmAssignments.Add(assignment);
            await db.SaveChangesAsync(cancellationToken);
            load[choice.Id!] = load.GetValueOrDefault(choice.Id!) + 1;
            return new VmAssignmentDto(ToDto(choice, load), assignment.AssignedAt);
        }
        finally
        {
            _assigning.Release();
        }
    }

    public async Task<bool> ReleaseAsync(string userId, CancellationToken cancellationToken)
    {
        await using var db = await _dbs.CreateDbContextAsync(cancellationToken);
        return await db.VmAssignments.Where(a => a.UserId == userId).ExecuteDeleteAsync(cancellationToken) > 0;
    }

    public void Dispose() => _assigning.Dispose();

    private int Capacity(VmInstance instance) => Math.Min(instance.MaxUsers ?? int.MaxValue, MaxConnectionsPerVm);

    // currentUsers in the file counts users the operator placed by other means.
    private static int Users(VmInstance instance, Dictionary<string, int> load) => (instance.CurrentUsers ?? 0) + load.GetValueOrDefault(instance.Id!);

    private PoolVmDto ToDto(VmInstance i, Dictionary<string, int> load) =>
        new(i.Id!, i.Host!, i.Region, i.InstanceType, i.Status ?? "available", Capacity(i) == int.MaxValue ? 0 : Capacity(i), Users(i, load));

    private async Task<Dictionary<string, int>> LoadAsync(CancellationToken cancellationToken)
    {
        await using var db = await _dbs.CreateDbContextAsync(cancellationToken);
        return await db.VmAssignments.GroupBy(a => a.InstanceId).Select(g => new { g.Key, Count = g.Count() })
            .ToDictionaryAsync(g => g.Key, g => g.Count, cancellationToken);
    }

    private static OptionsValidationException Invalid(string path, string problem) =>
        new(VmsOptions.Section + ":InstancesFile", typeof(VmsOptions), [$"The VM pool file {path} (Covibe:Vms:InstancesFile) is not usable: {problem}. Its format is seed 000's config/vm-instances.json."]);
}
