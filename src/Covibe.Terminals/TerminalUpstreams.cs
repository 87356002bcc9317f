using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text.Json;
using Covibe.Protocol;
using Covibe.Web;

namespace Covibe.Terminals;

/// <summary>
/// One client connection's sessions on other servers of the deployment (<see cref="ITerminalPeers"/>): one connection to
/// each such server, opened on the member's behalf when the client first addresses one of its sessions. What the client
/// sends for those sessions goes there as it is, and what that server answers comes back as it is (output, attached,
/// resized, exited, its errors), except its own session lists: ours already include its sessions. If that server goes
/// away, the client hears that the sessions it watched there are gone (their shells went with it). What comes back is a
/// stream to the client (<see cref="Outbox.SendStreamAsync"/>): a client slow to take it holds back the reading
/// of that server's answers, and so that server's output pumps, as it holds back its own sessions here.
/// </summary>
internal sealed class TerminalUpstreams(ITerminalPeers peers, TerminalUser user, Outbox toClient, ILogger logger)
    : IAsyncDisposable
{
    /// <summary>Another server's frames: output of up to 64 KiB, escaped.</summary>
    private const int MaxFrameBytes = 4 * 1024 * 1024;
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(5);
    private readonly ConcurrentDictionary<string, Upstream> _byNode = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _closing = new();
    private volatile bool _disposing;

    /// <summary>
    /// The other server holding a session this client created or attached to through it: known from that server's own
    /// answer, before the deployment's directory (<see cref="ITerminalPeers"/>) may have heard of a new session.
    /// </summary>
    public string? NodeOf(string id) => _byNode.Values.FirstOrDefault(u => u.Watches(id))?.Node;

    /// <summary>Sends the client's message to <paramref name="node"/>, connecting first if this client has not reached it yet.</summary>
    public async Task ForwardAsync(string node, TerminalRequest request, ReadOnlyMemory<byte> json, CancellationToken cancellationToken)
    {
        var id = (request.Type == TerminalMessageTypes.Session ? request.Id : request.Session) ?? "";
        if (!_byNode.TryGetValue(node, out var upstream))
        {
            upstream = await OpenAsync(node, id, cancellationToken);
            _byNode[node] = upstream;
        }
        if (request is { Type: TerminalMessageTypes.Session, Action: TerminalActions.Attach })
        {
            upstream.Watching(id, true);
        }
        else if (request is { Type: TerminalMessageTypes.Session, Action: TerminalActions.Detach or TerminalActions.Close })
        {
            upstream.Watching(id, false);
        }
        if (!upstream.Send(json))
        {
            throw Unreachable(node, id);
        }
    }

    private async Task<Upstream> OpenAsync(string node, string id, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(ConnectTimeout);
        WebSocket? socket = null;
        try
        {
            socket = await peers.ConnectAsync(node, user, deadline.Token);
            var upstream = new Upstream(node, socket);
            // The other server says ready first, or why it refused the member (signed out meanwhile): said to the client.
            var first = await upstream.Buffer.ReceiveAsync(socket, deadline.Token);
            var frame = upstream.Buffer.Message(first.Count);
            if (first.Closed || TypeOf(frame.Span) != TerminalMessageTypes.Ready)
            {
                var refusal = first.Closed ? null : Refusal(frame);
                upstream.Buffer.Dispose();
                upstream.Dispose();
                throw refusal ?? Unreachable(node, id);
            }
            TerminalLog.PeerConnected(logger, user.Id, node);
            upstream.Writing = upstream.Outbox.RunAsync(_closing.Token);
            upstream.Reading = ReadAsync(upstream, _closing.Token);
            return upstream;
        }
        catch (Exception e) when (e is WebSocketException or HttpRequestException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            TerminalLog.PeerUnreachable(logger, node, e.Message);
            socket?.Dispose();
            throw Unreachable(node, id);
        }
    }

    private static TerminalException? Refusal(ReadOnlyMemory<byte> frame)
    {
        try
        {
            using var document = JsonDocument.Parse(frame);
            var root = document.RootElement;
            return root.TryGetProperty("code", out var code) && root.TryGetProperty("error", out var error) && code.GetString() is { } c && error.GetString() is { } text
                ? new TerminalException(c, text)
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static TerminalException Unreachable(string node, string id) =>
        new(TerminalErrorCodes.SessionNotFound,
            $"Session '{id}' is on another server of this deployment ({node}), which does not answer: if it has stopped, its terminals ended with it. List your sessions again.");

    /// <summary>Passes the other server's frames to the client until it or this connection goes.</summary>
    private async Task ReadAsync(Upstream upstream, CancellationToken cancellationToken)
    {
        try
        {
            await PassOnAsync(upstream, cancellationToken);
        }
        finally
        {
            upstream.Buffer.Dispose(); // only this loop reads into it
        }
    }

    private async Task PassOnAsync(Upstream upstream, CancellationToken cancellationToken)
    {
        while (true)
        {
            ReadOnlyMemory<byte> frame;
            try
            {
                var received = await upstream.Buffer.ReceiveAsync(upstream.Socket, cancellationToken);
                if (received.Closed)
                {
                    break;
                }
                if (received.TooLarge || received.Binary)
                {
                    continue;
                }
                frame = upstream.Buffer.Message(received.Count);
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
            {
                break; // the other server went away, or this connection is closing
            }
            if (!Noticed(upstream, frame))
            {
                continue;
            }
            try
            {
                await toClient.SendStreamAsync(frame.ToArray(), cancellationToken);
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
            {
                return; // the client went away: this connection is ending and closes its upstreams
            }
        }
        if (_disposing)
        {
            return;
        }
        // Gone from under us: a later message for its sessions connects again (it may have been a restart).
        _byNode.TryRemove(new KeyValuePair<string, Upstream>(upstream.Node, upstream));
        TerminalLog.PeerLost(logger, upstream.Node);
        try
        {
            foreach (var id in upstream.Watched())
            {
                var error = new TerminalErrorMessage(null, id,
                    $"The server that ran session '{id}' ({upstream.Node}) has stopped, and the terminal ended with it.", TerminalErrorCodes.SessionNotFound);
                await toClient.SendStreamAsync(JsonSerializer.SerializeToUtf8Bytes(error, TerminalJsonContext.Wire.TerminalErrorMessage), cancellationToken);
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The client went away too.
        }
        upstream.Dispose();
    }

    /// <summary>
    /// Whether the client gets this frame: not the other server's session lists (ours include its sessions); and which
    /// sessions the client no longer watches there (ended, detached, not found).
    /// </summary>
    private static bool Noticed(Upstream upstream, ReadOnlyMemory<byte> frame)
    {
        var type = TypeOf(frame.Span);
        if (type == TerminalMessageTypes.Output)
        {
            return true;
        }
        if (type == TerminalMessageTypes.Sessions)
        {
            return false;
        }
        using var document = JsonDocument.Parse(frame);
        var root = document.RootElement;
        if (type == TerminalMessageTypes.Session && root.TryGetProperty("action", out var action) && root.TryGetProperty("id", out var id))
        {
            switch (action.GetString())
            {
                case TerminalActions.Created:
                    upstream.Watching(id.GetString() ?? "", true); // its creator is attached to it there
                    break;
                case TerminalActions.Exited or TerminalActions.Closed or TerminalActions.Detached:
                    upstream.Watching(id.GetString() ?? "", false);
                    break;
            }
        }
        else if (type == TerminalMessageTypes.Error && root.TryGetProperty("session", out var session) && root.TryGetProperty("code", out var code)
            && code.GetString() is TerminalErrorCodes.SessionNotFound or TerminalErrorCodes.ViewerTooSlow)
        {
            upstream.Watching(session.GetString() ?? "", false);
        }
        return true;
    }

    /// <summary>The <c>type</c> of a frame (the servers write it first).</summary>
    private static string? TypeOf(ReadOnlySpan<byte> frame)
    {
        var reader = new Utf8JsonReader(frame);
        try
        {
            return reader.Read() && reader.TokenType == JsonTokenType.StartObject && reader.Read() && reader.TokenType == JsonTokenType.PropertyName
                && reader.ValueTextEquals("type"u8) && reader.Read() && reader.TokenType == JsonTokenType.String
                ? reader.GetString()
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Says goodbye to every other server (the sessions there live on, as they do here when a client goes).</summary>
    public async ValueTask DisposeAsync()
    {
        _disposing = true;
        await Task.WhenAll(_byNode.Values.Select(u => u.CloseAsync()));
        await _closing.CancelAsync();
        _byNode.Clear();
        _closing.Dispose();
    }

    private sealed class Upstream(string node, WebSocket socket) : IDisposable
    {
        private readonly HashSet<string> _watched = new(StringComparer.Ordinal);

        public string Node { get; } = node;

        public WebSocket Socket { get; } = socket;

        public Outbox Outbox { get; } = new(socket);

        public Task Writing { get; set; } = Task.CompletedTask;

        public MessageBuffer Buffer { get; } = new(MaxFrameBytes);

        public Task Reading { get; set; } = Task.CompletedTask;

        public void Watching(string id, bool watching)
        {
            lock (_watched)
            {
                _ = watching ? _watched.Add(id) : _watched.Remove(id);
            }
        }

        public bool Watches(string id)
        {
            lock (_watched)
            {
                return _watched.Contains(id);
            }
        }

        public List<string> Watched()
        {
            lock (_watched)
            {
                return [.. _watched];
            }
        }

        /// <summary>Queues a client's message for that server; false if the connection to it is gone.</summary>
        public bool Send(ReadOnlyMemory<byte> json) => Socket.State == WebSocketState.Open && !Outbox.Closing && Outbox.TrySend(json.ToArray());

        /// <summary>Says goodbye (its sessions live on there), waiting 2 s at most for the answer.</summary>
        public async Task CloseAsync()
        {
            try
            {
                using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                Outbox.Close(WebSocketCloseStatus.NormalClosure, "bye");
                Outbox.Complete();
                await Writing.WaitAsync(deadline.Token);
                await Reading.WaitAsync(deadline.Token);
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException or TimeoutException)
            {
                // Gone already.
            }
            Dispose();
        }

        public void Dispose()
        {
            Outbox.Complete();
            Socket.Dispose();
            Outbox.Dispose();
        }
    }
}
