using System.CommandLine;
using System.Net.WebSockets;
using System.Text.Json;
using Covibe.Protocol;

namespace Covibe.Cli;

/// <summary><c>covibe chat send|tail</c>.</summary>
internal static class ChatCommands
{
    public static Command Create(CredentialStore store)
    {
        var chat = new Command("chat", "Team chat");
        chat.Subcommands.Add(Send(store));
        chat.Subcommands.Add(Tail(store));
        return chat;
    }

    private static Command Send(CredentialStore store)
    {
        var message = new Argument<string>("message") { Description = "What to say" };
        var command = new Command("send", "Post a message to the team") { message };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            await client.PostAsync("api/chat/message", new PostChatMessageRequest(parse.GetValue(message)),
                CovibeJsonContext.Default.PostChatMessageRequest, CovibeJsonContext.Default.ChatMessageDto, ct);
        });
        return command;
    }

    private static Command Tail(CredentialStore store)
    {
        var lines = new Option<int>("--lines", "-n") { Description = "How many recent messages to show first", DefaultValueFactory = _ => 20 };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing new messages as they arrive (reconnects on its own)" };
        var command = new Command("tail", "Show recent messages; with -f, follow the chat live") { lines, follow };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var count = Math.Clamp(parse.GetValue(lines), 1, 200);
            var recent = await client.GetAsync($"api/chat/history?limit={count}", CovibeJsonContext.Default.ChatHistoryResponse, ct);
            var lastId = 0L;
            foreach (var m in recent.Messages)
            {
                lastId = Print(m.Id, m.UserName, m.Message, m.Timestamp, lastId);
            }
            if (parse.GetValue(follow))
            {
                await FollowAsync(client, lastId, ct);
            }
        });
        return command;
    }

    /// <summary>
    /// Live messages over the hub. After every (re)connect it first fetches what it missed over
    /// REST, then prints live messages it has not printed yet: no gap, no duplicate.
    /// </summary>
    private static async Task FollowAsync(CovibeClient client, long lastId, CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromSeconds(1);
        var buffer = new byte[256 * 1024];
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                using var socket = await client.ConnectHubAsync(TimeProvider.System, cancellationToken);
                ChatHistoryResponse page;
                do
                {
                    page = await client.GetAsync($"api/chat/history?after={lastId}&limit=200", CovibeJsonContext.Default.ChatHistoryResponse, cancellationToken);
                    foreach (var m in page.Messages)
                    {
                        lastId = Print(m.Id, m.UserName, m.Message, m.Timestamp, lastId);
                    }
                }
                while (page.Messages.Length == 200);
                delay = TimeSpan.FromSeconds(1);
                while (socket.State == WebSocketState.Open)
                {
                    var (text, closed) = await CovibeClient.ReceiveHubMessageAsync(socket, buffer, cancellationToken);
                    if (closed)
                    {
                        break;
                    }
                    using var doc = JsonDocument.Parse(text);
                    var type = doc.RootElement.GetProperty("type").GetString();
                    if (type == HubMessageTypes.ChatMessage)
                    {
                        var m = doc.RootElement.Deserialize(CovibeJsonContext.Default.ChatMessageEvent)!;
                        lastId = Print(m.Id, m.UserName, m.Message, m.Timestamp, lastId);
                    }
                    else if (type == HubMessageTypes.Error && doc.RootElement.Deserialize(CovibeJsonContext.Default.ErrorMessage) is { Fatal: true } error)
                    {
                        throw new CliException(error.Error);
                    }
                }
            }
            catch (Exception e) when (e is WebSocketException or HttpRequestException or IOException or ServerUnreachableException)
            {
                // Fall through to reconnect.
            }
            if (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            await Console.Error.WriteLineAsync($"(disconnected; reconnecting in {delay.TotalSeconds:0} s)");
            await Task.Delay(delay, cancellationToken);
            delay = TimeSpan.FromSeconds(Math.Min(delay.TotalSeconds * 2, 30));
        }
    }

    private static long Print(long id, string user, string message, DateTime timestamp, long lastId)
    {
        if (id <= lastId)
        {
            return lastId;
        }
        Console.WriteLine($"[{timestamp.ToLocalTime():HH:mm}] {user}: {message}");
        return id;
    }
}
