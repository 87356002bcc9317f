using Covibe.Server.Features.Repositories;
using Covibe.Execution;
using Covibe.Server.Features.Git;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Secrets;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Covibe.Web;
using Covibe.Server.Hosting;
using Covibe.Server.Http;
using Covibe.Server.Features.Events;

namespace Covibe.Server.Features.Boxes;

/// <summary>
/// Seed 002's allocator: <c>requestBox</c> claims a ready box from the team's warm pool for the repository and branch
/// with one conditional row update (<c>FOR UPDATE SKIP LOCKED</c> on PostgreSQL), or records a box to provision and
/// answers at once (seed 002's asynchronous default). Also the box store's reads, release, and the team's pools.
/// </summary>
public sealed class BoxService(
    IDbContextFactory<CovibeDb> dbs,
    SecretBox secrets,
    GitMirror git,
    RepositoryAccess repositories,
    BoxKinds kinds,
    VmBoxes vms,
    Vms.VmService machines,
    BoxBuilder builder,
    BoxWork work,
    ITeamEvents events,
    IBoxOccupants occupants,
    BoxMetrics metrics,
    IOptions<BoxesOptions> options,
    TimeProvider time,
    ILogger<BoxService> logger) : IDisposable
{
    // SQLite has one writer at a time: claims on this node queue here (a millisecond each) rather than in SQLite's busy
    // handler, whose sleeps (up to 25 ms a time) made a burst of 20 claims wait 65 ms. PostgreSQL skips locked rows instead.
    private readonly SemaphoreSlim _sqliteClaims = new(1, 1);

    public void Dispose() => _sqliteClaims.Dispose();

    public async Task<(BoxDto Box, bool Claimed)> RequestAsync(Caller caller, BoxRequest request, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var repoUrl = RepoUrl(request.RepoUrl, (await repositories.ConnectedAsync(caller.TeamId, cancellationToken))?.Url);
        var branch = Branch(request.Branch, "branch");
        var requestedBy = request.RequestedBy?.Trim() is { Length: > 0 } tag ? tag : null;
        if (requestedBy is { Length: > 200 })
        {
            throw RequestRefusedException.Field("requestedBy", "'requestedBy' is at most 200 characters.");
        }
        var env = EnvFrom(caller.TeamId, request);
        try
        {
            await using var db = await dbs.CreateDbContextAsync(cancellationToken);
            // Where: a container (the default), the operator's VM pool, or one of the member's own VMs (never pooled).
            var vmId = string.IsNullOrWhiteSpace(request.VmId) ? null : request.VmId.Trim();
            var backend = vmId is null ? ContainerBoxes.KindName : VmBoxes.KindName;
            string? target = null;
            if (vmId == "pool")
            {
                if (!vms.HasPool)
                {
                    throw RequestRefusedException.Field("vmId", "This server has no VM pool for boxes (seed 000's vm-instances.json, with each VM's username and hostKeyFingerprint).");
                }
            }
            else if (vmId is not null)
            {
                var overSsh = await machines.OverSshAsync(caller.UserId, vmId, cancellationToken)
                    ?? throw RequestRefusedException.Field("vmId", $"You have no VM '{vmId}'. Boxes go on your own VMs (GET /api/vm/list), on 'pool' (the operator's VMs), or in a container without 'vmId'.");
                target = overSsh ? vmId
                    : throw RequestRefusedException.Field("vmId", $"'{vmId}' is a runner VM: boxes go on VMs the server reaches over SSH, on 'pool', or in a container. Run agents on it directly instead (vmId on spawn).");
            }
            var pool = target is not null ? null : await db.BoxPools.AsNoTracking()
                .Where(p => p.TeamId == caller.TeamId && p.RepoUrl == repoUrl && p.BaseBranch == branch && p.Backend == backend)
                .Select(p => new { p.Id, p.HeadCommit }).FirstOrDefaultAsync(cancellationToken);
            if (pool is not null && await ClaimQueuedAsync(db, pool.Id, caller.UserId, requestedBy, started, cancellationToken) is { } claimedId)
            {
                var box = await db.Boxes.SingleAsync(b => b.Id == claimedId, cancellationToken);
                if (env is not null)
                {
                    box.Env = secrets.Seal(env, BoxSecrets.EnvOwner(caller.TeamId, box.Id), BoxSecrets.EnvPurpose);
                    await db.SaveChangesAsync(cancellationToken);
                    // Ready means the .env is there: written before the answer (and again after a restart, from the sealed copy).
                    try
                    {
                        await builder.InjectEnvAsync(box, cancellationToken);
                    }
                    catch (PlaceUnreachableException e)
                    {
                        // The box goes back to its pool as it was, for a claim once the engine answers again.
                        await UnclaimAsync(db, box, CancellationToken.None);
                        throw new RequestRefusedException(Refusal.Unavailable, "container-engine-unavailable", "The container engine does not answer",
                            $"{e.Message} Your box's .env could not be put in it, so the box was not given to you; try again once GET /health shows the engine back.");
                    }
                }
                BoxesLog.Claimed(logger, box.Id, caller.TeamId, pool.Id, caller.UserId, box.ClaimMs!.Value);
                metrics.Claimed(box.ClaimMs.Value);
                work.ReconcileAfterClaim();
                var dto = await DtoAsync(db, box, cancellationToken);
                events.Publish(caller.TeamId, new BoxUpdatedMessage(dto));
                return (dto, true);
            }
            if (pool is not null)
            {
                await db.BoxPools.Where(p => p.Id == pool.Id).ExecuteUpdateAsync(s => s.SetProperty(p => p.Misses, p => p.Misses + 1), cancellationToken);
                metrics.Missed();
            }
            if (await kinds.Named(backend).ProblemAsync(cancellationToken) is { } problem)
            {
                throw new RequestRefusedException(Refusal.Unavailable, "boxes-unavailable", "Boxes unavailable", $"Boxes run in containers, and this server's container engine is not usable: {problem}");
            }
            var held = await db.Boxes.CountAsync(b => b.TeamId == caller.TeamId && b.HolderId != null
                && (b.Status == BoxStatuses.Provisioning || b.Status == BoxStatuses.Ready), cancellationToken);
            if (held >= options.Value.MaxBoxesPerTeam)
            {
                throw new RequestRefusedException(Refusal.TooMany, "too-many-boxes", "Too many boxes",
                    $"Your team holds {held} boxes (the limit is {options.Value.MaxBoxesPerTeam}). Release one first (DELETE /api/boxes/{{id}}).");
            }
            // Not from a pool: the branch must exist before anyone waits for it.
            var commit = pool?.HeadCommit ?? await HeadAsync(caller.TeamId, repoUrl, branch, "branch", cancellationToken);
            var now = time.GetUtcNow().UtcDateTime;
            var created = new Box
            {
                Id = Tokens.NewId(),
                TeamId = caller.TeamId,
                PoolId = null,
                RepoUrl = repoUrl,
                Branch = branch,
                Commit = commit,
                RequestedBy = requestedBy,
                HolderId = caller.UserId,
                Status = BoxStatuses.Provisioning,
                Step = BoxSteps.Queued,
                Backend = backend,
                Target = target,
                CreatedAt = now,
                ClaimedAt = now,
            };
            if (env is not null)
            {
                created.Env = secrets.Seal(env, BoxSecrets.EnvOwner(caller.TeamId, created.Id), BoxSecrets.EnvPurpose);
            }
            db.Boxes.Add(created);
            await db.SaveChangesAsync(cancellationToken);
            work.Provision();
            var answer = await DtoAsync(db, created, cancellationToken);
            events.Publish(caller.TeamId, new BoxUpdatedMessage(answer));
            return (answer, false);
        }
        finally
        {
            if (env is not null)
            {
                CryptographicOperations.ZeroMemory(env);
            }
        }
    }

    /// <summary>
    /// Claims the oldest ready box of the pool that nobody holds, in one conditional update: two requests never get
    /// the same box (on PostgreSQL the row is locked and others skip it; SQLite runs one writer at a time).
    /// </summary>
    private async Task<string?> ClaimQueuedAsync(CovibeDb db, string poolId, string userId, string? requestedBy, long started, CancellationToken cancellationToken)
    {
        var gate = db.Database.IsSqlite() ? _sqliteClaims : null;
        if (gate is not null)
        {
            await gate.WaitAsync(cancellationToken);
        }
        try
        {
            return await ClaimAsync(db, poolId, userId, requestedBy, time.GetUtcNow().UtcDateTime, Stopwatch.GetElapsedTime(started).TotalMilliseconds, cancellationToken);
        }
        finally
        {
            gate?.Release();
        }
    }

    /// <summary>Gives a claimed box back to its pool, ready for the next claim, in one write.</summary>
    private static async Task UnclaimAsync(CovibeDb db, Box box, CancellationToken cancellationToken)
    {
        box.HolderId = null;
        box.RequestedBy = null;
        box.ClaimedAt = null;
        box.ClaimMs = null;
        box.Env = null;
        await db.SaveChangesAsync(cancellationToken);
    }

    private static async Task<string?> ClaimAsync(CovibeDb db, string poolId, string userId, string? requestedBy, DateTime now, double elapsedMs, CancellationToken cancellationToken)
    {
        // The whole claim is one statement (one write): who holds it, for what, when, and how long the claim took up to
        // this statement (which itself takes well under a millisecond).
        var ids = db.Database.IsNpgsql()
            ? db.Database.SqlQuery<string>($"""
                UPDATE boxes SET holder_id = {userId}, requested_by = {requestedBy}, claimed_at = {now}, claim_ms = {elapsedMs}
                WHERE id = (SELECT id FROM boxes WHERE pool_id = {poolId} AND status = 'ready' AND holder_id IS NULL ORDER BY ready_at LIMIT 1 FOR UPDATE SKIP LOCKED)
                AND holder_id IS NULL RETURNING id AS "Value"
                """)
            : db.Database.SqlQuery<string>($"""
                UPDATE boxes SET holder_id = {userId}, requested_by = {requestedBy}, claimed_at = {now}, claim_ms = {elapsedMs}
                WHERE id = (SELECT id FROM boxes WHERE pool_id = {poolId} AND status = 'ready' AND holder_id IS NULL ORDER BY ready_at LIMIT 1)
                AND holder_id IS NULL RETURNING id AS "Value"
                """);
        return (await ids.ToListAsync(cancellationToken)).FirstOrDefault();
    }

    public async Task<BoxDto[]> ListAsync(Caller caller, bool all, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        // Standbys waiting in a pool are counted on the pool, not listed as anyone's box.
        var boxes = await db.Boxes.AsNoTracking()
            .Where(b => b.TeamId == caller.TeamId && b.HolderId != null && (all || (b.Status != BoxStatuses.Released)))
            .OrderByDescending(b => b.CreatedAt).Take(500).ToListAsync(cancellationToken);
        var names = await NamesAsync(db, boxes, cancellationToken);
        return [.. boxes.Select(b => Dto(b, names))];
    }

    public async Task<BoxDto?> GetAsync(Caller caller, string boxId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var box = await TeamBox(db.Boxes.AsNoTracking(), caller, boxId).SingleOrDefaultAsync(cancellationToken);
        return box is null ? null : await DtoAsync(db, box, cancellationToken);
    }

    /// <summary>The box's provisioning log from <paramref name="from"/>.</summary>
    /// <summary>
    /// The box's provisioning log from byte <paramref name="from"/>, at most 1 MiB and whole UTF-8 characters only (the next
    /// read starts where this one stopped); complete once the box is no longer being made and the page reaches the end.
    /// Null for a box the caller's team does not have.
    /// </summary>
    public async Task<LogPage?> LogAsync(Caller caller, string boxId, long from, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var box = await TeamBox(db.Boxes.AsNoTracking(), caller, boxId).SingleOrDefaultAsync(cancellationToken);
        if (box is null)
        {
            return null;
        }
        var path = work.LogPath(box.Id);
        var complete = box.Status != BoxStatuses.Provisioning;
        if (!File.Exists(path))
        {
            return new LogPage(0, [], complete);
        }
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var start = Math.Clamp(from, 0, file.Length);
        file.Position = start;
        var buffer = new byte[(int)Math.Min(file.Length - start, 1 << 20)];
        var read = await file.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken);
        var length = Utf8Boundary.CompleteLength(buffer.AsSpan(0, read));
        return new LogPage(start, buffer[..length], complete && start + length >= file.Length);
    }

    /// <summary>Releases the box: its agents are stopped, its container and files removed. The holder or the team's owner may.</summary>
    public async Task<BoxDto?> ReleaseAsync(Caller caller, string boxId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var box = await TeamBox(db.Boxes, caller, boxId).SingleOrDefaultAsync(cancellationToken);
        if (box is null)
        {
            return null;
        }
        if (box.HolderId != caller.UserId && !await caller.IsTeamOwnerAsync(db, cancellationToken))
        {
            throw RequestRefusedException.Forbidden("Only the member who holds the box, or the team's owner, can release it.");
        }
        if (box.Status != BoxStatuses.Released)
        {
            box.Status = BoxStatuses.Released;
            box.Step = BoxSteps.Released;
            box.ReleasedAt = time.GetUtcNow().UtcDateTime;
            await db.SaveChangesAsync(cancellationToken);
            BoxesLog.Released(logger, box.Id, box.TeamId, caller.UserId);
            await occupants.StopAsync(box.Id, cancellationToken);
            work.Provision(); // the worker removes what it left behind
        }
        var dto = await DtoAsync(db, box, cancellationToken);
        events.Publish(caller.TeamId, new BoxUpdatedMessage(dto));
        return dto;
    }

    /// <summary>Seals a <c>.env</c> for the team: an <c>envPayload</c> to send with later requests instead of the plaintext.</summary>
    public string SealPayload(Caller caller, string? env)
    {
        var bytes = EnvFrom(caller.TeamId, new BoxRequest(null, Env: env ?? throw RequestRefusedException.Field("env", "Give the .env text in 'env'.")))!;
        try
        {
            return secrets.Seal(bytes, caller.TeamId, BoxSecrets.PayloadPurpose);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }

    /// <summary>A box of the caller's team that a member holds (pool standbys are nobody's yet).</summary>
    private static IQueryable<Box> TeamBox(IQueryable<Box> boxes, Caller caller, string boxId) =>
        boxes.Where(b => b.Id == boxId && b.TeamId == caller.TeamId && b.HolderId != null);

    /// <summary>The <c>.env</c> bytes of a request (plaintext or the team's payload), checked; null when there is none.</summary>
    private byte[]? EnvFrom(string teamId, BoxRequest request)
    {
        if (request.Env is not null && request.EnvPayload is not null)
        {
            throw RequestRefusedException.Field("env", "Give 'env' or 'envPayload', not both.");
        }
        byte[] bytes;
        if (request.EnvPayload is { } payload)
        {
            try
            {
                bytes = secrets.Open(payload, teamId, BoxSecrets.PayloadPurpose);
            }
            catch (Exception e) when (e is CryptographicException or FormatException)
            {
                // Never echo the payload: it may be someone else's.
                throw RequestRefusedException.Field("envPayload", "'envPayload' is not a payload this server made for your team (POST /api/boxes/env-payload makes one).");
            }
        }
        else if (request.Env is { } text)
        {
            bytes = Encoding.UTF8.GetBytes(text);
        }
        else
        {
            return null;
        }
        if (bytes.Length > options.Value.MaxEnvBytes)
        {
            var size = bytes.Length;
            CryptographicOperations.ZeroMemory(bytes);
            throw new RequestRefusedException(Refusal.TooLarge, "env-too-large", "Too large",
                $"The .env is {size} bytes; a box takes at most {options.Value.MaxEnvBytes} (Covibe:Boxes:MaxEnvBytes).");
        }
        if (bytes.AsSpan().Contains((byte)0))
        {
            CryptographicOperations.ZeroMemory(bytes);
            throw RequestRefusedException.Field("env", "The .env must be text (it holds a NUL byte).");
        }
        return bytes;
    }

    /// <summary>The address a box may follow: the team's own repository (<paramref name="teamRepository"/>), or one the server reads without a credential.</summary>
    internal string RepoUrl(string? value, string? teamRepository)
    {
        var url = value?.Trim() ?? "";
        if (url.Length > 0 && url == teamRepository)
        {
            return url;
        }
        if (GitNames.RepositoryProblem(url, options.Value.AllowLocalRepositories ? RepositoryFetcher.ServerOrThisDisk : RepositoryFetcher.Server, "A box") is { } problem)
        {
            throw RequestRefusedException.Field("repoUrl", problem);
        }

        return url.TrimEnd('/');
    }

    internal static string Branch(string? value, string field)
    {
        var branch = string.IsNullOrWhiteSpace(value) ? "main" : value.Trim();
        return Git.GitNames.IsBranchName(branch) ? branch : throw RequestRefusedException.Field(field, $"'{branch}' is not a branch name (letters, digits, . _ / -; not starting with - or containing ..).");
    }

    /// <summary>The commit the branch points to now; a clear error for a repository that cannot be read or a branch it lacks.</summary>
    internal async Task<string> HeadAsync(string teamId, string repoUrl, string branch, string field, CancellationToken cancellationToken)
    {
        string? head;
        try
        {
            head = await git.HeadAsync(await RemoteAsync(teamId, repoUrl, cancellationToken), branch, cancellationToken);
        }
        catch (GitMirrorException e)
        {
            throw RequestRefusedException.Field("repoUrl", $"The repository could not be read: {e.Message}");
        }
        return head ?? throw RequestRefusedException.Field(field, $"The repository has no branch '{branch}'.");
    }

    /// <summary>A box's repository as git reaches it: with the team's credential when it is the team's repository.</summary>
    internal Task<GitRemote> RemoteAsync(string teamId, string repoUrl, CancellationToken cancellationToken) =>
        repositories.RemoteAsync(teamId, repoUrl, options.Value.AllowLocalRepositories, cancellationToken);

    internal static async Task<BoxDto> DtoAsync(CovibeDb db, Box box, CancellationToken cancellationToken) =>
        Dto(box, await NamesAsync(db, [box], cancellationToken));

    private static async Task<Dictionary<string, string>> NamesAsync(CovibeDb db, List<Box> boxes, CancellationToken cancellationToken)
    {
        var ids = boxes.Select(b => b.HolderId).OfType<string>().Distinct().ToList();
        return await db.Users.Where(u => ids.Contains(u.Id)).ToDictionaryAsync(u => u.Id, u => u.Name, cancellationToken);
    }

    internal static BoxDto Dto(Box b, IReadOnlyDictionary<string, string> names) => new(
        b.Id, b.Status, b.Step, b.RepoUrl, b.Branch, b.Commit, b.RequestedBy,
        b.HolderId is { } holder ? new BoxHolderDto(holder, names.GetValueOrDefault(holder, "?")) : null,
        b.PoolId, FromPool: b.ClaimMs is not null, b.ClaimMs, b.Backend, b.Image, b.Devcontainer, b.Workspace, HasEnv: b.Env is not null,
        b.Error, b.CreatedAt, b.ReadyAt, b.ClaimedAt, b.ReleasedAt);
}
