using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Secrets;
using Covibe.Server.Hosting;
using Lib.Net.Http.WebPush;
using Lib.Net.Http.WebPush.Authentication;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Push;

/// <summary>
/// Web Push (issue 26, point 4): members subscribe their browsers (the page may then be closed: the phone still hears), and
/// features notify members; each message goes encrypted to the member's push services (RFC 8291, VAPID RFC 8292, through
/// <c>Lib.Net.Http.WebPush</c>), in the background, so nothing waits for a push service. A subscription its push service
/// says is gone is removed.
/// </summary>
public sealed class PushService : BackgroundService
{
    private readonly Channel<(string[] UserIds, string? TeamId, PushNote Note)> _queue = Channel.CreateBounded<(string[], string?, PushNote)>(
        new BoundedChannelOptions(1000) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
    private readonly IDbContextFactory<CovibeDb> _dbs;
    private readonly SecretBox _secrets;
    private readonly IOptions<PushOptions> _options;
    private readonly TimeProvider _time;
    private readonly ILogger<PushService> _logger;
    private readonly HttpClient _http;
    private (string Public, string Private)? _keys;

    public PushService(IDbContextFactory<CovibeDb> dbs, SecretBox secrets, IOptions<PushOptions> options, TimeProvider time, ILogger<PushService> logger)
    {
        (_dbs, _secrets, _options, _time, _logger) = (dbs, secrets, options, time, logger);
        // Push services are on the internet: a connection to this machine or a private network is refused unless allowed.
        _http = new HttpClient(new SocketsHttpHandler { ConnectCallback = ConnectAsync, AllowAutoRedirect = false, PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
        {
            Timeout = TimeSpan.FromSeconds(15),
        };
    }

    /// <summary>The public half of the server's VAPID key pair (browsers subscribe with it), made the first time it is asked for.</summary>
    public async Task<string> PublicKeyAsync(CancellationToken cancellationToken) => (await KeysAsync(cancellationToken)).Public;

    /// <summary>Keeps <paramref name="caller"/>'s subscription (again: replaces it). Null, or why it cannot be one.</summary>
    public async Task<string?> SubscribeAsync(Caller caller, PushSubscriptionRequest request, CancellationToken cancellationToken)
    {
        if (Problem(request) is { } problem)
        {
            return problem;
        }
        var hash = Hash(request.Endpoint!);
        var json = JsonSerializer.Serialize(new PushSubscriptionRequest(request.Endpoint, request.Keys), CovibeJsonContext.Default.PushSubscriptionRequest);
        await using var db = await _dbs.CreateDbContextAsync(cancellationToken);
        await db.PushSubscriptions.Where(s => s.EndpointHash == hash).ExecuteDeleteAsync(cancellationToken);
        if (await db.PushSubscriptions.CountAsync(s => s.UserId == caller.UserId, cancellationToken) >= _options.Value.MaxPerMember)
        {
            // The oldest browser makes room: people change phones more often than they clean up.
            var oldest = await db.PushSubscriptions.Where(s => s.UserId == caller.UserId).OrderBy(s => s.CreatedAt).FirstAsync(cancellationToken);
            db.PushSubscriptions.Remove(oldest);
        }
        var id = Tokens.NewId();
        db.PushSubscriptions.Add(new PushSubscriptionRow
        {
            Id = id,
            UserId = caller.UserId,
            TeamId = caller.TeamId,
            EndpointHash = hash,
            Sealed = _secrets.Seal(Encoding.UTF8.GetBytes(json), id, PushSecrets.SubscriptionPurpose),
            CreatedAt = _time.GetUtcNow().UtcDateTime,
        });
        await db.SaveChangesAsync(cancellationToken);
        return null;
    }

    /// <summary>Forgets the caller's subscription of <paramref name="endpoint"/>; false if they had none.</summary>
    public async Task<bool> UnsubscribeAsync(Caller caller, string endpoint, CancellationToken cancellationToken)
    {
        await using var db = await _dbs.CreateDbContextAsync(cancellationToken);
        var hash = Hash(endpoint);
        return await db.PushSubscriptions.Where(s => s.EndpointHash == hash && s.UserId == caller.UserId).ExecuteDeleteAsync(cancellationToken) > 0;
    }

    /// <summary>Queues <paramref name="note"/> for <paramref name="userIds"/> (<c>*</c>: every member of <paramref name="teamId"/>); never waits.</summary>
    public void Notify(IReadOnlyCollection<string> userIds, string teamId, PushNote note)
    {
        if (_options.Value.Enabled && userIds.Count > 0)
        {
            _queue.Writer.TryWrite(([.. userIds], teamId, note));
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var (userIds, teamId, note) in _queue.Reader.ReadAllAsync(stoppingToken))
            {
                try
                {
                    await SendAsync(userIds, teamId, note, stoppingToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    PushLog.Failed(_logger, string.Join(',', userIds), e.Message);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task SendAsync(string[] userIds, string? teamId, PushNote note, CancellationToken cancellationToken)
    {
        List<PushSubscriptionRow> rows;
        await using (var db = await _dbs.CreateDbContextAsync(cancellationToken))
        {
            var everyone = userIds.Contains("*");
            rows = await db.PushSubscriptions.AsNoTracking()
                .Where(s => s.TeamId == teamId && (everyone || userIds.Contains(s.UserId)))
                .ToListAsync(cancellationToken);
        }
        if (rows.Count == 0)
        {
            return;
        }
        var (publicKey, privateKey) = await KeysAsync(cancellationToken);
        using var vapid = new VapidAuthentication(publicKey, privateKey) { Subject = _options.Value.Subject };
        var client = new PushServiceClient(_http) { DefaultAuthentication = vapid, DefaultTimeToLive = 3600 };
        var payload = JsonSerializer.Serialize(note, CovibeJsonContext.Default.PushNote);
        await Task.WhenAll(rows.Select(row => SendOneAsync(client, row, payload, cancellationToken)));
        PushLog.Sent(_logger, rows.Count);
    }

    private async Task SendOneAsync(PushServiceClient client, PushSubscriptionRow row, string payload, CancellationToken cancellationToken)
    {
        var stored = JsonSerializer.Deserialize(_secrets.Open(row.Sealed, row.Id, PushSecrets.SubscriptionPurpose), CovibeJsonContext.Default.PushSubscriptionRequest)!;
        var subscription = new PushSubscription { Endpoint = stored.Endpoint };
        subscription.SetKey(PushEncryptionKeyName.P256DH, stored.Keys!.P256dh!);
        subscription.SetKey(PushEncryptionKeyName.Auth, stored.Keys.Auth!);
        try
        {
            await client.RequestPushMessageDeliveryAsync(subscription, new PushMessage(payload) { Urgency = PushMessageUrgency.High, Topic = null }, cancellationToken);
        }
        catch (PushServiceClientException e) when (e.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.Gone)
        {
            PushLog.Gone(_logger, row.UserId, (int)e.StatusCode);
            await using var db = await _dbs.CreateDbContextAsync(CancellationToken.None);
            await db.PushSubscriptions.Where(s => s.Id == row.Id).ExecuteDeleteAsync(CancellationToken.None);
        }
        catch (Exception e) when (e is PushServiceClientException or HttpRequestException or TaskCanceledException)
        {
            PushLog.Failed(_logger, row.UserId, e.Message);
        }
    }

    private async Task<(string Public, string Private)> KeysAsync(CancellationToken cancellationToken)
    {
        if (_keys is { } known)
        {
            return known;
        }
        await using var db = await _dbs.CreateDbContextAsync(cancellationToken);
        var row = await db.PushKeys.AsNoTracking().SingleOrDefaultAsync(k => k.Id == PushKeyRow.Vapid, cancellationToken);
        if (row is null)
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var parameters = key.ExportParameters(includePrivateParameters: true);
            var publicKey = System.Buffers.Text.Base64Url.EncodeToString([0x04, .. parameters.Q.X!, .. parameters.Q.Y!]);
            db.PushKeys.Add(new PushKeyRow
            {
                Id = PushKeyRow.Vapid,
                PublicKey = publicKey,
                PrivateKey = _secrets.Seal(parameters.D, PushKeyRow.Vapid, PushSecrets.VapidPurpose),
                CreatedAt = _time.GetUtcNow().UtcDateTime,
            });
            try
            {
                await db.SaveChangesAsync(cancellationToken);
                PushLog.KeysMade(_logger);
            }
            catch (DbUpdateException)
            {
                // Another node made them first: theirs hold.
            }
            await using var again = await _dbs.CreateDbContextAsync(cancellationToken);
            row = await again.PushKeys.AsNoTracking().SingleAsync(k => k.Id == PushKeyRow.Vapid, cancellationToken);
        }
        var keys = (row.PublicKey, System.Buffers.Text.Base64Url.EncodeToString(_secrets.Open(row.PrivateKey, PushKeyRow.Vapid, PushSecrets.VapidPurpose)));
        _keys = keys;
        return keys;
    }

    private string? Problem(PushSubscriptionRequest request)
    {
        if (!Uri.TryCreate(request.Endpoint, UriKind.Absolute, out var endpoint) || endpoint.Scheme is not ("https" or "http") || request.Endpoint!.Length > 2000)
        {
            return "'endpoint' must be the subscription's push service address (https://...).";
        }
        if (!_options.Value.AllowPrivateEndpoints && (endpoint.Scheme != "https" || (IPAddress.TryParse(endpoint.Host.Trim('[', ']'), out var ip) && IsPrivate(ip)) || endpoint.IsLoopback))
        {
            return "'endpoint' must be an https address of a push service on the internet.";
        }
        if (request.Keys?.P256dh is not { } p256dh || !TryDecode(p256dh, out var point) || point.Length != 65 || point[0] != 4)
        {
            return "'keys.p256dh' must be the browser's P-256 public key (65 bytes, base64url), as PushSubscription.toJSON() gives it.";
        }
        if (request.Keys.Auth is not { } auth || !TryDecode(auth, out var secret) || secret.Length != 16)
        {
            return "'keys.auth' must be the subscription's 16-byte auth secret (base64url), as PushSubscription.toJSON() gives it.";
        }
        return null;
    }

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var addresses = await Dns.GetHostAddressesAsync(context.DnsEndPoint.Host, cancellationToken);
        var allowed = addresses.Where(a => _options.Value.AllowPrivateEndpoints || !IsPrivate(a)).ToArray();
        if (allowed.Length == 0)
        {
            throw new HttpRequestException($"The push service {context.DnsEndPoint.Host} is on this machine or a private network, which Covibe:Push does not allow.");
        }
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(allowed, context.DnsEndPoint.Port, cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>This machine, private, shared, link-local and unique-local addresses: never a push service's.</summary>
    internal static bool IsPrivate(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        return IPAddress.IsLoopback(address) || address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any)
            || address.IsIPv6LinkLocal || address.IsIPv6UniqueLocal || address.IsIPv6SiteLocal
            || Execution.Local.SandboxNetwork.PrivateRanges.Any(range => IPNetwork.Parse(range).Contains(address));
    }

    /// <summary>base64url without padding, as Web Push writes keys.</summary>
    private static bool TryDecode(string text, out byte[] bytes)
    {
        try
        {
            bytes = System.Buffers.Text.Base64Url.DecodeFromChars(text);
            return true;
        }
        catch (FormatException)
        {
            bytes = [];
            return false;
        }
    }

    private static string Hash(string endpoint) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(endpoint)));

    public override void Dispose()
    {
        _http.Dispose();
        base.Dispose();
    }
}
