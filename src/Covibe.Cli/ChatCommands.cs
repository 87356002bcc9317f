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
                lastId = Print(m.Id, m.UserName, m.Message, m.Timestamp, m.Kind, lastId);
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
    private static Task FollowAsync(CovibeClient client, long lastId, CancellationToken cancellationToken) =>
        client.FollowHubAsync(
            async _ =>
            {
                ChatHistoryResponse page;
                do
                {
                    page = await client.GetAsync($"api/chat/history?after={lastId}&limit=200", CovibeJsonContext.Default.ChatHistoryResponse, cancellationToken);
                    foreach (var m in page.Messages)
                    {
                        lastId = Print(m.Id, m.UserName, m.Message, m.Timestamp, m.Kind, lastId);
                    }
                }
                while (page.Messages.Length == 200);
            },
            message =>
            {
                var type = message.GetProperty("type").GetString();
                if (type == HubMessageTypes.ChatMessage)
                {
                    var m = message.Deserialize(CovibeJsonContext.Default.ChatMessageEvent)!;
                    lastId = Print(m.Id, m.UserName, m.Message, m.Timestamp, m.Kind, lastId);
                }
                else if (type == HubMessageTypes.Error && message.Deserialize(CovibeJsonContext.Default.ErrorMessage) is { Fatal: true } error)
                {
                    throw new CliException(error.Error);
                }
                return false; // follows until interrupted
            },
            () => "reconnecting",
            cancellationToken);

    private static long Print(long id, string user, string message, DateTime timestamp, string? kind, long lastId)
    {
        if (id <= lastId)
        {
            return lastId;
        }
        // An activity line says what the member did (merged an agent's branch), not what they wrote.
        Console.WriteLine(kind == "activity" ? $"[{timestamp.ToLocalTime():HH:mm}] * {user} {message}" : $"[{timestamp.ToLocalTime():HH:mm}] {user}: {message}");
        return id;
    }
}
