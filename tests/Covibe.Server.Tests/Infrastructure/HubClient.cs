using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;

namespace Covibe.Server.Tests.Infrastructure;

/// <summary>A real WebSocket client (of <c>/ws</c> unless told another path) that records everything the server sends.</summary>
public sealed class HubClient : IAsyncDisposable
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    private readonly Channel<JsonElement> _messages = Channel.CreateUnbounded<JsonElement>();
    private readonly TaskCompletionSource<(WebSocketCloseStatus? Status, string? Reason)> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private Task _reader = Task.CompletedTask;
    private TaskCompletionSource _reading = Reading();

    private HubClient(ClientWebSocket socket) => Socket = socket;

    public ClientWebSocket Socket { get; }

    /// <summary>Completes when the server closes the connection (or it breaks).</summary>
    public Task<(WebSocketCloseStatus? Status, string? Reason)> Closed => _closed.Task;

    public static async Task<HubClient> ConnectAsync(Uri server, string? bearer = null, string? origin = null, bool read = true, string path = "/ws", bool deflate = false)
    {
        var socket = new ClientWebSocket();
        if (deflate)
        {
            // Offers permessage-deflate, as browsers do.
            socket.Options.DangerousDeflateOptions = new WebSocketDeflateOptions();
        }
        if (bearer is not null)
        {
            socket.Options.SetRequestHeader("Authorization", $"Bearer {bearer}");
        }
        if (origin is not null)
        {
            socket.Options.SetRequestHeader("Origin", origin);
        }
        socket.Options.CollectHttpResponseDetails = true;
        await socket.ConnectAsync(new Uri($"ws://{server.Authority}{path}"), CancellationToken.None);
        var client = new HubClient(socket);
        if (read)
        {
            client._reader = client.ReadLoopAsync();
        }
        return client;
    }

    /// <summary>Starts reading a connection opened with <c>read: false</c>.</summary>
    public void StartReading() => _reader = ReadLoopAsync();

    /// <summary>Stops taking frames off the socket, as a stalled client does (the buffers between it and the server fill), until <see cref="ResumeReading"/>.</summary>
    public void PauseReading() => Volatile.Write(ref _reading, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    public void ResumeReading() => Volatile.Read(ref _reading).TrySetResult();

    private static TaskCompletionSource Reading()
    {
        var reading = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        reading.SetResult();
        return reading;
    }

    public Task SendAsync(object message) => SendTextAsync(JsonSerializer.Serialize(message, JsonSerializerOptions.Web));

    public Task SendTextAsync(string text) =>
        Socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None);

    /// <summary>Sends join_team and waits for team_joined.</summary>
    public async Task<JsonElement> JoinAsync(string? teamId, string token)
    {
        await SendAsync(new { type = "join_team", teamId, token });
        return await ReceiveAsync("team_joined");
    }

    /// <summary>The next message of <paramref name="type"/> (others are skipped).</summary>
    public Task<JsonElement> ReceiveAsync(string type, TimeSpan? timeout = null) =>
        ReceiveAsync(m => m.GetProperty("type").GetString() == type, timeout, type);

    public Task<JsonElement> ReceiveAsync(Func<JsonElement, bool> match, TimeSpan? timeout = null, string what = "a matching message") =>
        ReceiveAsync(_messages.Reader, match, timeout ?? DefaultTimeout, what);

    /// <summary>The next message from <paramref name="messages"/> that matches (others are skipped), or a clear failure.</summary>
    public static async Task<JsonElement> ReceiveAsync(ChannelReader<JsonElement> messages, Func<JsonElement, bool> match, TimeSpan timeout, string what)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            while (true)
            {
                var message = await messages.ReadAsync(cts.Token);
                if (match(message))
                {
                    return message;
                }
            }
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"No {what} within {timeout.TotalSeconds} s.");
        }
        catch (ChannelClosedException)
        {
            throw new InvalidOperationException($"The connection closed before {what} arrived.");
        }
    }

    /// <summary>Asserts that no message of <paramref name="type"/> arrives within <paramref name="window"/>.</summary>
    public async Task ExpectNoneAsync(string type, TimeSpan window)
    {
        using var cts = new CancellationTokenSource(window);
        try
        {
            while (true)
            {
                var message = await _messages.Reader.ReadAsync(cts.Token);
                message.GetProperty("type").GetString().ShouldNotBe(type, $"unexpected message: {message}");
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (ChannelClosedException)
        {
        }
    }

    private async Task ReadLoopAsync()
    {
        var buffer = new byte[1024 * 1024];
        try
        {
            while (true)
            {
                await Volatile.Read(ref _reading).Task.WaitAsync(_stop.Token);
                var count = 0;
                ValueWebSocketReceiveResult result;
                do
                {
                    result = await Socket.ReceiveAsync(buffer.AsMemory(count), _stop.Token);
                    count += result.Count;
                }
                while (!result.EndOfMessage);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    _closed.TrySetResult((Socket.CloseStatus, Socket.CloseStatusDescription));
                    return;
                }
                using var doc = JsonDocument.Parse(buffer.AsMemory(0, count));
                _messages.Writer.TryWrite(doc.RootElement.Clone());
            }
        }
        catch (Exception)
        {
            _closed.TrySetResult((null, "aborted"));
        }
        finally
        {
            _messages.Writer.TryComplete();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Socket.State == WebSocketState.Open)
        {
            try
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await Socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "done", cts.Token);
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException)
            {
            }
        }
        await _stop.CancelAsync();
        try
        {
            await _reader;
        }
        catch (OperationCanceledException)
        {
        }
        Socket.Dispose();
        _stop.Dispose();
    }
}
