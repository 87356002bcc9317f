using Covibe.Server.Features.Repositories;
using System.Text.Json;
using System.Text.Json.Serialization;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Auth;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Covibe.Server.Hosting;
using Covibe.Server.Http;

namespace Covibe.Server.Features.Boxes;

/// <summary>The operator's pools file (<c>Covibe:Boxes:PoolsFile</c>): seed 002's pool configs, each for a team (its id or name).</summary>
public sealed record PoolsFile(List<PoolsFileEntry>? Pools);

public sealed record PoolsFileEntry(string? Team, string? RepoUrl, string? BaseBranch, int? MinStandby, int? MaxInstances, string? Backend = null);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true)]
[JsonSerializable(typeof(PoolsFile))]
internal sealed partial class PoolsJsonContext : JsonSerializerContext;

/// <summary>
/// Seed 002's <c>reconcilePools([...])</c> input, kept in the database: the team owner's pools (<c>PUT /api/pools</c>)
/// and the operator's (the pools file, loaded at start-up), and each pool's figures for <c>GET /api/pools</c>.
/// </summary>
public sealed class PoolService(IDbContextFactory<CovibeDb> dbs, BoxService boxes, RepositoryAccess repositories, BoxKinds kinds, BoxWork work, IOptions<BoxesOptions> options, TimeProvider time)
{
    /// <summary>How many recent claims the latency figures cover.</summary>
    private const int LatencyWindow = 200;

    /// <summary>Replaces the team's own pools with <paramref name="specs"/> (the operator's stay as they are). Each branch must exist.</summary>
    public async Task<PoolDto[]> SetAsync(Caller owner, PoolSpec[] specs, CancellationToken cancellationToken)
    {
        var checkedSpecs = new List<(string RepoUrl, string Branch, int Min, int Max, string Backend)>();
        var teamRepository = (await repositories.ConnectedAsync(owner.TeamId, cancellationToken))?.Url;
        for (var i = 0; i < specs.Length; i++)
        {
            var spec = specs[i] ?? throw RequestRefusedException.Field($"[{i}]", "Each pool is an object {repoUrl, baseBranch, minStandby, maxInstances}.");
            checkedSpecs.Add(Check(spec, $"[{i}].", options.Value.MaxPoolInstances, boxes, teamRepository));
        }
        if (checkedSpecs.GroupBy(s => (s.RepoUrl, s.Branch)).FirstOrDefault(g => g.Count() > 1) is { } twice)
        {
            throw RequestRefusedException.Field("pools", $"{twice.Key.RepoUrl} ({twice.Key.Branch}) is listed twice.");
        }
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var existing = await db.BoxPools.Where(p => p.TeamId == owner.TeamId).ToListAsync(cancellationToken);
        foreach (var (repoUrl, branch, _, _, _) in checkedSpecs)
        {
            if (existing.Any(p => p.Source == "config" && p.RepoUrl == repoUrl && p.BaseBranch == branch))
            {
                throw new RequestRefusedException(Refusal.Conflict, "pool-from-config", "Conflict", $"The pool for {repoUrl} ({branch}) is the operator's (the server's pools file); it cannot be changed here.");
            }
        }
        var heads = new Dictionary<(string, string), string>();
        for (var i = 0; i < checkedSpecs.Count; i++)
        {
            var (repoUrl, branch, _, _, _) = checkedSpecs[i];
            heads[(repoUrl, branch)] = await boxes.HeadAsync(owner.TeamId, repoUrl, branch, $"[{i}].baseBranch", cancellationToken);
        }
        var now = time.GetUtcNow().UtcDateTime;
        foreach (var gone in existing.Where(p => p.Source == "api" && !checkedSpecs.Any(s => s.RepoUrl == p.RepoUrl && s.Branch == p.BaseBranch)))
        {
            db.BoxPools.Remove(gone);
        }
        foreach (var (repoUrl, branch, min, max, backend) in checkedSpecs)
        {
            var pool = existing.FirstOrDefault(p => p.RepoUrl == repoUrl && p.BaseBranch == branch);
            if (pool is null)
            {
                pool = new BoxPool { Id = Tokens.NewId(), TeamId = owner.TeamId, RepoUrl = repoUrl, BaseBranch = branch, Source = "api", CreatedAt = now };
                db.BoxPools.Add(pool);
            }
            Apply(pool, min, max, backend, heads[(repoUrl, branch)], now);
        }
        await db.SaveChangesAsync(cancellationToken);
        work.Reconcile();
        return await ListAsync(owner.TeamId, cancellationToken);
    }

    public async Task<PoolDto[]> ListAsync(string teamId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var pools = await db.BoxPools.AsNoTracking().Where(p => p.TeamId == teamId).OrderBy(p => p.CreatedAt).ToListAsync(cancellationToken);
        var ids = pools.Select(p => p.Id).ToList();
        var since = time.GetUtcNow().UtcDateTime.AddHours(-1);
        var counts = await db.Boxes.AsNoTracking().Where(b => b.PoolId != null && ids.Contains(b.PoolId)
                && (b.Status == BoxStatuses.Ready || b.Status == BoxStatuses.Provisioning || (b.Status == BoxStatuses.Failed && b.CreatedAt > since)))
            .GroupBy(b => new { b.PoolId, b.Status, Held = b.HolderId != null })
            .Select(g => new { g.Key.PoolId, g.Key.Status, g.Key.Held, Count = g.Count() }).ToListAsync(cancellationToken);
        var result = new List<PoolDto>();
        foreach (var p in pools)
        {
            int Count(string status, bool? held) => counts.Where(c => c.PoolId == p.Id && c.Status == status && (held is null || c.Held == held)).Sum(c => c.Count);
            var claimed = db.Boxes.AsNoTracking().Where(b => b.PoolId == p.Id && b.ClaimMs != null);
            var claims = await claimed.LongCountAsync(cancellationToken);
            var latencies = await claimed.OrderByDescending(b => b.ClaimedAt).Take(LatencyWindow).Select(b => b.ClaimMs!.Value).ToListAsync(cancellationToken);
            result.Add(new PoolDto(p.Id, p.RepoUrl, p.BaseBranch, p.MinStandby, p.MaxInstances, p.Source, p.Backend,
                Ready: Count(BoxStatuses.Ready, false), Provisioning: Count(BoxStatuses.Provisioning, false),
                Claimed: Count(BoxStatuses.Ready, true) + Count(BoxStatuses.Provisioning, true), Failed: Count(BoxStatuses.Failed, null),
                claims, p.Misses, Percentile(latencies, 0.50), Percentile(latencies, 0.99), p.HeadCommit,
                Paused: p.PausedReason is not null, p.PausedReason, p.LastError, p.ResumeAt));
        }
        return [.. result];
    }

    /// <summary>Loads the operator's pools file into the database (its pools replace the ones it declared before). A bad file stops start-up.</summary>
    public async Task LoadFileAsync(CancellationToken cancellationToken)
    {
        var path = options.Value.PoolsFile;
        if (string.IsNullOrEmpty(path))
        {
            return;
        }
        PoolsFile? file;
        try
        {
            file = JsonSerializer.Deserialize(await File.ReadAllTextAsync(path, cancellationToken), PoolsJsonContext.Default.PoolsFile);
        }
        catch (Exception e) when (e is JsonException or IOException)
        {
            throw Invalid(path, e is JsonException ? $"it is not valid JSON ({e.Message})" : e.Message);
        }
        var entries = file?.Pools ?? throw Invalid(path, "'pools' is missing");
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var now = time.GetUtcNow().UtcDateTime;
        var declared = new List<BoxPool>();
        for (var i = 0; i < entries.Count; i++)
        {
            var entry = entries[i];
            var team = await db.Teams.AsNoTracking().Where(t => t.Id == entry.Team || t.Name == entry.Team).Select(t => t.Id).ToListAsync(cancellationToken);
            if (team.Count != 1)
            {
                throw Invalid(path, team.Count == 0 ? $"pools[{i}].team '{entry.Team}' is no team here" : $"pools[{i}].team '{entry.Team}' names {team.Count} teams; use the team's id");
            }
            (string RepoUrl, string Branch, int Min, int Max, string Backend) spec;
            try
            {
                spec = Check(new PoolSpec(entry.RepoUrl, entry.BaseBranch, entry.MinStandby, entry.MaxInstances, entry.Backend), $"pools[{i}].", int.MaxValue, boxes,
                    (await repositories.ConnectedAsync(team[0], cancellationToken))?.Url);
            }
            catch (RequestRefusedException e)
            {
                throw Invalid(path, e.Errors is { } errors ? string.Join("; ", errors.Select(f => $"{f.Key}: {string.Join(" ", f.Value)}")) : e.Message);
            }
            var pool = await db.BoxPools.SingleOrDefaultAsync(p => p.TeamId == team[0] && p.RepoUrl == spec.RepoUrl && p.BaseBranch == spec.Branch, cancellationToken);
            if (pool is null)
            {
                pool = new BoxPool { Id = Tokens.NewId(), TeamId = team[0], RepoUrl = spec.RepoUrl, BaseBranch = spec.Branch, Source = "config", CreatedAt = now };
                db.BoxPools.Add(pool);
            }
            pool.Source = "config";
            Apply(pool, spec.Min, spec.Max, spec.Backend, pool.HeadCommit, now);
            declared.Add(pool);
        }
        var ids = declared.Select(p => p.Id).ToList();
        db.BoxPools.RemoveRange(await db.BoxPools.Where(p => p.Source == "config" && !ids.Contains(p.Id)).ToListAsync(cancellationToken));
        await db.SaveChangesAsync(cancellationToken);
    }

    private (string RepoUrl, string Branch, int Min, int Max, string Backend) Check(PoolSpec spec, string prefix, int maxInstances, BoxService boxes, string? teamRepository)
    {
        string repoUrl, branch;
        try
        {
            repoUrl = boxes.RepoUrl(spec.RepoUrl, teamRepository);
            branch = BoxService.Branch(spec.BaseBranch, "baseBranch");
        }
        catch (RequestRefusedException e)
        {
            throw e.Under(prefix);
        }
        var max = spec.MaxInstances ?? throw RequestRefusedException.Field(prefix + "maxInstances", "Give 'maxInstances': the most boxes the pool may have at once (ready and claimed).");
        if (max < 1 || max > maxInstances)
        {
            throw RequestRefusedException.Field(prefix + "maxInstances", $"'maxInstances' is from 1 to {maxInstances} (Covibe:Boxes:MaxPoolInstances).");
        }
        var min = spec.MinStandby ?? 0;
        if (min < 0 || min > max)
        {
            throw RequestRefusedException.Field(prefix + "minStandby", "'minStandby' (boxes kept ready) is from 0 to 'maxInstances'.");
        }
        var backend = string.IsNullOrEmpty(spec.Backend) ? ContainerBoxes.KindName : spec.Backend;
        if (!kinds.IsKnown(backend))
        {
            throw RequestRefusedException.Field(prefix + "backend", "'backend' is 'container' (the default) or 'vm' (the operator's VM pool).");
        }
        return (repoUrl, branch, min, max, backend);
    }

    /// <summary>A changed pool starts afresh: no backoff, not paused.</summary>
    private static void Apply(BoxPool pool, int min, int max, string backend, string? head, DateTime now)
    {
        pool.Backend = backend;
        if (pool.MinStandby != min || pool.MaxInstances != max || pool.PausedReason is not null)
        {
            pool.Failures = 0;
            pool.PausedReason = null;
            pool.ResumeAt = null;
            pool.LastError = null;
        }
        pool.MinStandby = min;
        pool.MaxInstances = max;
        if (head is not null && head != pool.HeadCommit)
        {
            pool.HeadCommit = head;
            pool.HeadCheckedAt = now;
        }
        pool.UpdatedAt = now;
    }

    internal static double? Percentile(List<double> values, double p)
    {
        if (values.Count == 0)
        {
            return null;
        }
        var sorted = values.Order().ToList();
        var rank = (int)Math.Ceiling(p * sorted.Count) - 1;
        return Math.Round(sorted[Math.Clamp(rank, 0, sorted.Count - 1)], 2);
    }

    private static OptionsValidationException Invalid(string path, string problem) =>
        new(BoxesOptions.Section + ":PoolsFile", typeof(BoxesOptions), [$"The pools file {path} (Covibe:Boxes:PoolsFile) is not usable: {problem}. Its format: {{\"pools\": [{{\"team\", \"repoUrl\", \"baseBranch\", \"minStandby\", \"maxInstances\"}}]}}."]);
}
