using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Security.Cryptography;
using Covibe.Server.Features.Auth;
using Covibe.Web;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Hub.SocketIo;

/// <summary>This node's Socket.IO clients by Engine.IO session id, and the work of each kind of request.</summary>
internal sealed class SocketIoClients(HubSessions sessions, IOptions<SocketIoOptions> options, IHostApplicationLifetime lifetime, ILogger<SocketIoClients> logger)
{
    private readonly ConcurrentDictionary<string, SocketIoSession> _clients = new();

    private SocketIoOptions Options => options.Value;

    /// <summary>The client of <paramref name="sid"/>, if it is here and the request comes from where it connected.</summary>
    public SocketIoSession? Find(string sid, string remoteAddress) =>
        _clients.TryGetValue(sid, out var client) && client.Engine.RemoteAddress == remoteAddress ? client : null;

    public async Task<IResult> OpenPollingAsync(HttpContext context, Caller? caller)
    {
        var client = Start(context, caller, canUpgrade: true, socket: null);
        return await PollAsync(context, client);
    }

    public async Task<IResult> OpenWebSocketAsync(HttpContext context, Caller? caller)
    {
        using var accepted = await AcceptAsync(context);
        var client = Start(context, caller, canUpgrade: false, accepted);
        await ReceiveAsync(client, accepted, upgrading: false, context.RequestAborted);
        await client.Running;
        return Results.Empty;
    }

    public async Task<IResult> UpgradeAsync(HttpContext context, SocketIoSession client)
    {
        using var accepted = await AcceptAsync(context);
        var socket = accepted.Socket;
        if (!client.Engine.TryBeginUpgrade(socket))
        {
            // One WebSocket per session (the protocol): this one is refused, the session goes on.
            SocketIoLog.SecondWebSocket(logger, client.Id);
            await new WebSocketSink(socket).CloseAsync(WebSocketCloseStatus.PolicyViolation, "this session has a WebSocket", context.RequestAborted);
            return Results.Empty;
        }
        await ReceiveAsync(client, accepted, upgrading: true, context.RequestAborted);
        await client.Running;
        return Results.Empty;
    }

    /// <summary>
    /// A Socket.IO WebSocket, accepted by Covibe itself so prepared frames (a broadcast's, an agent chunk's) go onto it as
    /// they are. No WebSocket pings: Engine.IO has its own heartbeat. No compression: Socket.IO clients do not share it.
    /// </summary>
    private static Task<FramedWebSocket> AcceptAsync(HttpContext context) => FramedWebSocket.AcceptAsync(context, TimeSpan.Zero, offerCompression: false);

    public static async Task<IResult> PollAsync(HttpContext context, SocketIoSession client)
    {
        byte[]? body;
        try
        {
            body = await client.Engine.PollAsync(context.RequestAborted);
        }
        catch (OperationCanceledException)
        {
            return Results.Empty;
        }
        return body is null
            ? SocketIoEndpoint.Refused(3, "Bad request", "This session does not take a GET now (it is on a WebSocket, or another GET is waiting): connect again.")
            : Results.Bytes(body, "text/plain; charset=UTF-8");
    }

    public async Task<IResult> PostAsync(HttpContext context, SocketIoSession client)
    {
        if (!client.Engine.TryBeginPost())
        {
            return SocketIoEndpoint.Refused(3, "Bad request", "Send one POST at a time: this session is over.");
        }
        try
        {
            var body = await ReadBodyAsync(context.Request, Options.MaxPayloadBytes, context.RequestAborted);
            if (body is null)
            {
                client.Engine.End("a payload over maxPayload", abort: true);
                return SocketIoEndpoint.Refused(1, "Payload too large", $"A POST carries at most {Options.MaxPayloadBytes} bytes (maxPayload): this session is over.",
                    StatusCodes.Status413PayloadTooLarge);
            }
            foreach (var packet in SocketIoCodec.SplitPayload(body.Value))
            {
                if (packet.Span[0] == (byte)'b')
                {
                    client.ReadBinary();
                }
                else if (packet.Length > sessions.Options.MaxMessageBytes)
                {
                    client.TooLarge();
                }
                else
                {
                    await client.ReadAsync(packet, context.RequestAborted);
                }
            }
        }
        finally
        {
            client.Engine.EndPost();
        }
        return Results.Text("ok", "text/plain; charset=UTF-8");
    }

    private SocketIoSession Start(HttpContext context, Caller? caller, bool canUpgrade, FramedWebSocket? socket)
    {
        var sid = Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(20));
        var engine = new EngineSession(sid, AttemptLimiter.ClientKey(context), Options);
        if (socket is not null)
        {
            engine.UseWebSocket(socket);
        }
        var client = new SocketIoSession(engine, sessions, caller);
        _clients[sid] = client;
        SocketIoLog.Opened(logger, client.Id, socket is null ? "polling" : "websocket");
        client.Start(SocketIoCodec.Open(sid, canUpgrade, Options.PingIntervalMilliseconds, Options.PingTimeoutMilliseconds, Options.MaxPayloadBytes),
            lifetime.ApplicationStopping);
        _ = client.Running.ContinueWith(_ =>
        {
            _clients.TryRemove(sid, out var _);
            SocketIoLog.Closed(logger, client.Id, engine.EndReason ?? "server stopping");
            engine.Dispose();
        }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        return client;
    }

    /// <summary>
    /// The reading side of a WebSocket: packets for the session, in order. While <paramref name="upgrading"/>, it answers the
    /// probe and takes over from polling at <c>upgrade</c>.
    /// </summary>
    private async Task ReceiveAsync(SocketIoSession client, FramedWebSocket accepted, bool upgrading, CancellationToken cancellationToken)
    {
        var socket = accepted.Socket;
        using var buffer = new MessageBuffer(sessions.Options.MaxMessageBytes);
        using var ending = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, client.Engine.EndedToken);
        try
        {
            while (socket.State == WebSocketState.Open)
            {
                var (count, tooLarge, binary, closed) = await buffer.ReceiveAsync(socket, ending.Token);
                if (closed)
                {
                    if (upgrading)
                    {
                        client.Engine.AbandonUpgrade(socket);
                        return;
                    }
                    client.ClosedByClient();
                    return;
                }
                if (tooLarge)
                {
                    client.TooLarge();
                }
                else if (binary)
                {
                    client.ReadBinary();
                }
                else if (upgrading)
                {
                    upgrading = !await UpgradeStepAsync(client, accepted, buffer.Message(count), ending.Token);
                }
                else
                {
                    await client.ReadAsync(buffer.Message(count), ending.Token);
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException)
        {
            // The client went away, or the session ended.
        }
        if (upgrading)
        {
            client.Engine.AbandonUpgrade(socket);
        }
        else
        {
            client.Engine.End(client.Engine.EndReason ?? "the WebSocket closed");
        }
    }

    /// <summary>One packet of an upgrade: true once it is complete.</summary>
    private async Task<bool> UpgradeStepAsync(SocketIoSession client, FramedWebSocket socket, ReadOnlyMemory<byte> packet, CancellationToken cancellationToken)
    {
        if (packet.Span.SequenceEqual("2probe"u8))
        {
            await client.Engine.ProbeAsync(socket.Socket, cancellationToken);
            return false;
        }
        if (packet.Span.SequenceEqual("5"u8))
        {
            await client.Engine.CompleteUpgradeAsync(socket, cancellationToken);
            client.Flush();
            SocketIoLog.Upgraded(logger, client.Id);
            return true;
        }
        return false;
    }

    /// <summary>A polling body of at most <paramref name="limit"/> bytes, or null for a larger one.</summary>
    private static async Task<ReadOnlyMemory<byte>?> ReadBodyAsync(HttpRequest request, int limit, CancellationToken cancellationToken)
    {
        if (request.ContentLength > limit)
        {
            return null;
        }
        using var body = new MemoryStream();
        var chunk = new byte[8192];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (body.Length + read > limit)
            {
                return null;
            }
            body.Write(chunk, 0, read);
        }
        return body.GetBuffer().AsMemory(0, (int)body.Length);
    }
}
