using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json;
using System.Threading.Channels;
using Covibe.Protocol;

namespace Covibe.Runner;

/// <summary>The two ways one connection is carried: a WebSocket, or HTTPS long polls with the same messages.</summary>
public sealed partial class RunnerConnection
{
    private async Task<Outcome> WebSocketAsync(Channel<RunnerMessage> outbound, CancellationToken cancellationToken)
    {
        using var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Authorization", $"Bearer {_state.Credential}");
        socket.Options.KeepAliveInterval = TimeSpan.FromSeconds(15);
        socket.Options.CollectHttpResponseDetails = true;
        var uri = new UriBuilder(new Uri(_http.BaseAddress!, "api/runner/connect")) { Scheme = _http.BaseAddress!.Scheme == "https" ? "wss" : "ws" }.Uri;
        try
        {
            using var connectLimit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            connectLimit.CancelAfter(TimeSpan.FromSeconds(20));
            await socket.ConnectAsync(uri, connectLimit.Token);
        }
        catch (Exception e) when (e is WebSocketException or HttpRequestException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return socket.HttpStatusCode switch
            {
                HttpStatusCode.Unauthorized => new Outcome(OutcomeKind.Refused, "The server refused this runner's credential (revoked, or the runner was registered again)."),
                0 => new Outcome(OutcomeKind.Dropped, e.Message),
                var status => new Outcome(OutcomeKind.NoWebSocket, $"the server answered {(int)status} to the upgrade"),
            };
        }
        var welcomed = false;
        var sending = SendLoopAsync(socket, outbound.Reader, cancellationToken);
        Hello(outbound.Writer);
        var heartbeats = HeartbeatAsync(outbound.Writer, cancellationToken);
        var buffer = new byte[64 * 1024];
        using var message = new MemoryStream();
        try
        {
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer, cancellationToken);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return socket.CloseStatus is (WebSocketCloseStatus)RunnerProtocol.ClosedRevoked
                        ? new Outcome(OutcomeKind.Refused, socket.CloseStatusDescription ?? "This runner was revoked.")
                        : new Outcome(welcomed ? OutcomeKind.Welcomed : OutcomeKind.Dropped, $"the server closed the connection: {socket.CloseStatusDescription}");
                }
                message.Write(buffer, 0, result.Count);
                if (!result.EndOfMessage)
                {
                    continue;
                }
                var parsed = Parse(message.GetBuffer().AsSpan(0, (int)message.Length));
                message.SetLength(0);
                if (parsed is not null)
                {
                    welcomed |= parsed.Type == RunnerProtocol.Welcome;
                    Dispatch(parsed, outbound.Writer, cancellationToken);
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or IOException)
        {
            return new Outcome(welcomed ? OutcomeKind.Welcomed : OutcomeKind.Dropped, e.Message);
        }
        finally
        {
            outbound.Writer.TryComplete();
            await sending;
            await heartbeats;
        }
    }

    private static async Task SendLoopAsync(ClientWebSocket socket, ChannelReader<RunnerMessage> outbound, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var message in outbound.ReadAllAsync(cancellationToken))
            {
                await socket.SendAsync(JsonSerializer.SerializeToUtf8Bytes(message, CovibeJsonContext.Default.RunnerMessage), WebSocketMessageType.Text, true, cancellationToken);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or IOException or ObjectDisposedException)
        {
            socket.Abort(); // the receive loop sees it and the connection is taken up again
        }
    }

    /// <summary>
    /// Seed 001's polling: one long poll at a time waits on the server for what it has for the runner, while what the runner
    /// has to say goes out at once in short polls beside it. Both carry the same messages as the WebSocket.
    /// </summary>
    private async Task<Outcome> PollAsync(Channel<RunnerMessage> outbound, CancellationToken cancellationToken)
    {
        var welcomed = false;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Hello(outbound.Writer);
        var heartbeats = HeartbeatAsync(outbound.Writer, stop.Token);
        string? session = null;
        try
        {
            // The first poll says hello and learns the session; then receiving and sending go on side by side.
            var (first, failure) = await PostPollAsync([.. Drain(outbound.Reader)], null, wait: false, stop.Token);
            if (first is null)
            {
                return failure!;
            }
            session = first.Session;
            welcomed |= DispatchAll(first, outbound.Writer, stop.Token);
            var receiving = Task.Run(async () =>
            {
                while (true)
                {
                    var (reply, problem) = await PostPollAsync([], session, wait: true, stop.Token);
                    if (reply is null || reply.Session != session)
                    {
                        return problem ?? new Outcome(OutcomeKind.Dropped, "the server started a new session");
                    }
                    welcomed |= DispatchAll(reply, outbound.Writer, stop.Token);
                }
            }, stop.Token);
            var sending = Task.Run(async () =>
            {
                while (await outbound.Reader.WaitToReadAsync(stop.Token))
                {
                    var (reply, problem) = await PostPollAsync([.. Drain(outbound.Reader)], session, wait: false, stop.Token);
                    if (reply is null || reply.Session != session)
                    {
                        return problem ?? new Outcome(OutcomeKind.Dropped, "the server started a new session");
                    }
                    welcomed |= DispatchAll(reply, outbound.Writer, stop.Token);
                }
                return new Outcome(OutcomeKind.Dropped, "stopped");
            }, stop.Token);
            var ended = await Task.WhenAny(receiving, sending);
            var outcome = await ended;
            return outcome with { Kind = outcome.Kind == OutcomeKind.Dropped && welcomed ? OutcomeKind.Welcomed : outcome.Kind };
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new Outcome(welcomed ? OutcomeKind.Welcomed : OutcomeKind.Dropped, "stopped");
        }
        finally
        {
            await stop.CancelAsync();
            outbound.Writer.TryComplete();
            await heartbeats;
        }
    }

    private static IEnumerable<RunnerMessage> Drain(ChannelReader<RunnerMessage> outbound)
    {
        for (var i = 0; i < 200 && outbound.TryRead(out var next); i++)
        {
            yield return next;
        }
    }

    private bool DispatchAll(RunnerPollReply reply, ChannelWriter<RunnerMessage> outbound, CancellationToken cancellationToken)
    {
        var welcomed = false;
        foreach (var message in reply.Messages)
        {
            welcomed |= message.Type == RunnerProtocol.Welcome;
            Dispatch(message, outbound, cancellationToken);
        }
        return welcomed;
    }

    private async Task<(RunnerPollReply? Reply, Outcome? Failure)> PostPollAsync(RunnerMessage[] messages, string? session, bool wait, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "api/runner/poll")
        {
            Content = JsonContent.Create(new RunnerPoll(messages, session, wait), CovibeJsonContext.Default.RunnerPoll),
        };
        request.Headers.Authorization = new("Bearer", _state.Credential);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(TimeSpan.FromSeconds(150));
        try
        {
            using var reply = await _http.SendAsync(request, limit.Token);
            if (reply.StatusCode == HttpStatusCode.Unauthorized)
            {
                return (null, new Outcome(OutcomeKind.Refused, await ProblemText.DescribeAsync(reply, cancellationToken)));
            }
            if (!reply.IsSuccessStatusCode)
            {
                return (null, new Outcome(OutcomeKind.Dropped, await ProblemText.DescribeAsync(reply, cancellationToken)));
            }
            return ((await reply.Content.ReadFromJsonAsync(CovibeJsonContext.Default.RunnerPollReply, limit.Token))!, null);
        }
        catch (Exception e) when (e is HttpRequestException or JsonException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return (null, new Outcome(OutcomeKind.Dropped, e.Message));
        }
    }
}
