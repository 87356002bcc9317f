using System.Diagnostics;
using System.Net.WebSockets;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;

/// <summary>
/// The stack's own limit (issue 11): a Kestrel WebSocket broadcaster that does no work beyond the
/// job. POST /api/agent/spawn {task} starts the fake agent with its stdout on a pipe; each read is
/// written to the log, framed once as an agent_output (the same fields and positions as Covibe, so
/// the same client reads it) and sent to every joined socket, all sends awaited together before the
/// next read (output that arrives meanwhile goes out in the next, larger frame). No auth, no
/// database, no stream-json parsing, no per-viewer queue or flow control.
///   covibe-bench bare-server --port 3000 --claude PATH --data DIR
/// </summary>
static class BareKestrel
{
    public static async Task RunAsync(string[] args)
    {
        var port = Measure.Arg(args, "--port", 3000);
        var claude = args[Array.IndexOf(args, "--claude") + 1];
        var data = args[Array.IndexOf(args, "--data") + 1];
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        var app = builder.Build();
        app.UseWebSockets();
        var room = new List<WebSocket>();

        app.MapGet("/health", () => "ok");
        app.MapPost("/api/agent/spawn", async (HttpRequest request) =>
        {
            using var body = await JsonDocument.ParseAsync(request.Body);
            var id = Guid.NewGuid().ToString("N");
            var info = new ProcessStartInfo(claude) { RedirectStandardOutput = true };
            foreach (var a in (string[])["-p", body.RootElement.GetProperty("task").GetString()!, "--output-format", "stream-json", "--verbose"])
            {
                info.ArgumentList.Add(a);
            }
            var agent = Process.Start(info)!;
            _ = BroadcastAsync(id, agent, Path.Combine(data, "agents", id), room);
            return Results.Json(new { id });
        });
        app.Map("/ws", async (HttpContext context) =>
        {
            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            var buffer = new byte[4096];
            while (socket.State == WebSocketState.Open)
            {
                var result = await socket.ReceiveAsync(buffer, CancellationToken.None);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    break;
                }
                lock (room)
                {
                    room.Add(socket);
                }
                await socket.SendAsync("{\"type\":\"team_joined\"}"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
            }
            lock (room)
            {
                room.Remove(socket);
            }
        });
        await app.RunAsync();
    }

    private static async Task BroadcastAsync(string id, Process agent, string directory, List<WebSocket> room)
    {
        Directory.CreateDirectory(directory);
        await using var log = new FileStream(Path.Combine(directory, "output.log"), FileMode.Create, FileAccess.Write, FileShare.Read, 1, useAsync: false);
        var stdout = agent.StandardOutput.BaseStream;
        var buffer = new byte[64 * 1024 + 4];
        var frame = new System.Buffers.ArrayBufferWriter<byte>(256 * 1024);
        long position = 0;
        var carry = 0;
        int n;
        while ((n = await stdout.ReadAsync(buffer.AsMemory(carry, 64 * 1024))) > 0)
        {
            log.Write(buffer, carry, n);
            var length = carry + n;
            var complete = Covibe.Web.Utf8Boundary.CompleteLength(buffer.AsSpan(0, length));
            frame.ResetWrittenCount();
            using (var json = new Utf8JsonWriter(frame, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            {
                json.WriteStartObject();
                json.WriteString("type", "agent_output");
                json.WriteString("agentId", id);
                json.WriteString("owner", "bench");
                json.WriteString("data", buffer.AsSpan(0, complete));
                json.WriteBoolean("canControl", false);
                json.WriteNumber("position", position);
                json.WriteNumber("next", position + complete);
                json.WriteEndObject();
            }
            position += complete;
            buffer.AsSpan(complete, length - complete).CopyTo(buffer);
            carry = length - complete;
            await SendAllAsync(room, frame.WrittenMemory);
        }
        await agent.WaitForExitAsync();
        var end = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object> { ["type"] = "agent_output_end", ["agentId"] = id, ["position"] = position, ["status"] = "completed" });
        await SendAllAsync(room, end);
    }

    private static Task SendAllAsync(List<WebSocket> room, ReadOnlyMemory<byte> frame)
    {
        WebSocket[] sockets;
        lock (room)
        {
            sockets = [.. room];
        }
        return Task.WhenAll(sockets.Select(async s =>
        {
            try
            {
                await s.SendAsync(frame, WebSocketMessageType.Text, true, CancellationToken.None);
            }
            catch (Exception e) when (e is WebSocketException or ObjectDisposedException)
            {
                // That subscriber has gone; the others carry on.
            }
        }));
    }
}
