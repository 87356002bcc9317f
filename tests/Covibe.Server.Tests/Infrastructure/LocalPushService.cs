using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace Covibe.Server.Tests.Infrastructure;

/// <summary>
/// A stand-in push service on loopback (no real one is reachable here): it takes Web Push requests for its browsers, checks
/// the VAPID token (RFC 8292) against the key the server announced, and decrypts each message as the browser would
/// (RFC 8291, aes128gcm), with each browser's own private key and auth secret.
/// </summary>
public sealed class LocalPushService : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Dictionary<string, Browser> _browsers = [];
    private readonly Channel<Delivered> _delivered = Channel.CreateUnbounded<Delivered>();

    public sealed record Delivered(string Browser, JsonElement Message, string VapidKey, JsonElement Claims, string Urgency);

    private sealed record Browser(ECDiffieHellman Key, byte[] PublicKey, byte[] Auth, int Status);

    private LocalPushService(WebApplication app) => _app = app;

    public Uri Url { get; private set; } = null!;

    public static async Task<LocalPushService> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var service = new LocalPushService(app);
        app.MapPost("/push/{browser}", (string browser, HttpRequest request) => service.ReceiveAsync(browser, request));
        await app.StartAsync();
        service.Url = new Uri(app.Urls.First());
        return service;
    }

    /// <summary>A new browser's subscription (what <c>PushSubscription.toJSON()</c> gives); <paramref name="status"/>: what the service answers for it.</summary>
    public Protocol.PushSubscriptionRequest Subscribe(string browser, int status = 201)
    {
        var key = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        var q = key.ExportParameters(false).Q;
        byte[] publicKey = [0x04, .. q.X!, .. q.Y!];
        var auth = RandomNumberGenerator.GetBytes(16);
        _browsers[browser] = new Browser(key, publicKey, auth, status);
        return new Protocol.PushSubscriptionRequest(new Uri(Url, $"/push/{browser}").ToString(),
            new Protocol.PushSubscriptionKeys(System.Buffers.Text.Base64Url.EncodeToString(publicKey), System.Buffers.Text.Base64Url.EncodeToString(auth)));
    }

    public async Task<Delivered> ReceiveAsync(Func<Delivered, bool> match, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(20));
        try
        {
            while (true)
            {
                var next = await _delivered.Reader.ReadAsync(cts.Token);
                if (match(next))
                {
                    return next;
                }
            }
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"No matching push message arrived (requests: {string.Join(", ", _counts.Select(c => $"{c.Key} {c.Value}"))}; last failure: {_failure?.Message ?? "none"}).");
        }
    }

    public int Count(string browser) => _counts.GetValueOrDefault(browser);

    private readonly Dictionary<string, int> _counts = [];
    private Exception? _failure;

    private async Task<IResult> ReceiveAsync(string browser, HttpRequest request)
    {
        if (!_browsers.TryGetValue(browser, out var b))
        {
            return Results.NotFound();
        }
        lock (_counts)
        {
            _counts[browser] = _counts.GetValueOrDefault(browser) + 1;
        }
        if (b.Status != 201)
        {
            return Results.StatusCode(b.Status);
        }
        try
        {
            request.Headers.ContentEncoding.ToString().ShouldBe("aes128gcm");
            using var body = new MemoryStream();
            await request.Body.CopyToAsync(body);
            // The push service's origin; Lib.Net.Http.WebPush leaves the port out (real push services are on 443, where it is implied).
            var (vapidKey, claims) = CheckVapid(request.Headers.Authorization.ToString(), $"{request.Scheme}://{request.Host.Host}");
            var message = Decrypt(b, body.ToArray());
            _delivered.Writer.TryWrite(new Delivered(browser, JsonDocument.Parse(message).RootElement.Clone(), vapidKey, claims, request.Headers["Urgency"].ToString()));
            return Results.StatusCode(201);
        }
        catch (Exception e)
        {
            // Said by the test that waits for the message, not lost in the service's log.
            _failure = e;
            return Results.BadRequest();
        }
    }

    /// <summary>RFC 8292: <c>vapid t=JWT, k=key</c>; the JWT signed (ES256) by that key, for this service's origin.</summary>
    private static (string Key, JsonElement Claims) CheckVapid(string authorization, string origin)
    {
        authorization.ShouldStartWith("vapid ");
        var fields = authorization["vapid ".Length..].Split(',').Select(f => f.Trim().Split('=', 2)).ToDictionary(f => f[0], f => f[1]);
        var (jwt, key) = (fields["t"], fields["k"]);
        var parts = jwt.Split('.');
        var point = System.Buffers.Text.Base64Url.DecodeFromChars(key);
        using var ecdsa = ECDsa.Create(new ECParameters { Curve = ECCurve.NamedCurves.nistP256, Q = new ECPoint { X = point[1..33], Y = point[33..65] } });
        ecdsa.VerifyData(Encoding.ASCII.GetBytes($"{parts[0]}.{parts[1]}"), System.Buffers.Text.Base64Url.DecodeFromChars(parts[2]), HashAlgorithmName.SHA256)
            .ShouldBeTrue("the VAPID token is signed by the key it names");
        var claims = JsonDocument.Parse(System.Buffers.Text.Base64Url.DecodeFromChars(parts[1])).RootElement.Clone();
        claims.GetProperty("aud").GetString().ShouldBe(origin);
        DateTimeOffset.FromUnixTimeSeconds(claims.GetProperty("exp").GetInt64()).ShouldBeGreaterThan(TimeProvider.System.GetUtcNow());
        return (key, claims);
    }

    /// <summary>RFC 8291 (with RFC 8188's aes128gcm): what the browser reads.</summary>
    private static byte[] Decrypt(Browser b, byte[] body)
    {
        var salt = body[..16];
        var recordSize = BinaryPrimitives.ReadUInt32BigEndian(body.AsSpan(16, 4));
        var idLength = body[20];
        var senderKey = body[21..(21 + idLength)];
        var record = body[(21 + idLength)..];
        record.Length.ShouldBeLessThanOrEqualTo((int)recordSize);
        using var sender = ECDiffieHellman.Create(new ECParameters { Curve = ECCurve.NamedCurves.nistP256, Q = new ECPoint { X = senderKey[1..33], Y = senderKey[33..65] } });
        var shared = b.Key.DeriveRawSecretAgreement(sender.PublicKey);
        var ikm = HKDF.DeriveKey(HashAlgorithmName.SHA256, shared, 32, b.Auth, [.. "WebPush: info\0"u8, .. b.PublicKey, .. senderKey]);
        var cek = HKDF.DeriveKey(HashAlgorithmName.SHA256, ikm, 16, salt, [.. "Content-Encoding: aes128gcm\0"u8]);
        var nonce = HKDF.DeriveKey(HashAlgorithmName.SHA256, ikm, 12, salt, [.. "Content-Encoding: nonce\0"u8]);
        using var aes = new AesGcm(cek, 16);
        var plain = new byte[record.Length - 16];
        aes.Decrypt(nonce, record[..^16], record[^16..], plain);
        var end = plain.Length - 1;
        while (plain[end] == 0)
        {
            end--;
        }
        plain[end].ShouldBe((byte)2, "the last record ends with its delimiter");
        return plain[..end];
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        foreach (var b in _browsers.Values)
        {
            b.Key.Dispose();
        }
    }
}
