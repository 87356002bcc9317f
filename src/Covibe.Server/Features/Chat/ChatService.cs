using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Auth;
using Microsoft.EntityFrameworkCore;
using Covibe.Server.Features.Events;

namespace Covibe.Server.Features.Chat;

/// <summary>Team chat: a message is stored first, then broadcast, so nothing shown is ever lost.</summary>
public sealed class ChatService(IDbContextFactory<CovibeDb> dbs, ITeamEvents events, TimeProvider time)
{
    public const int MaxLength = 4000;
    public const int DefaultPageSize = 50;
    public const int MaxPageSize = 200;

    /// <summary>Null when the text is acceptable, else what is wrong with it.</summary>
    public static string? Check(string? text) =>
        string.IsNullOrWhiteSpace(text) ? "'message' is required and cannot be blank."
        : text.Length > MaxLength ? $"'message' must be at most {MaxLength} characters."
        : null;

    public Task<ChatMessageDto> PostAsync(Caller sender, string text, string? clientId, CancellationToken cancellationToken) =>
        StoreAsync(sender.TeamId, sender.UserId, sender.Name, text, clientId, kind: null, cancellationToken);

    /// <summary>
    /// Something a member did that the team should see (merged an agent's branch), kept in the chat's stream as an
    /// <c>activity</c> line with who did it: told live and found again in the history like anything said.
    /// </summary>
    public Task RecordActivityAsync(string teamId, string userId, string userName, string text, CancellationToken cancellationToken) =>
        StoreAsync(teamId, userId, userName, text.Length <= MaxLength ? text : text[..MaxLength], clientId: null, Activity, cancellationToken);

    public const string Activity = "activity";

    /// <summary>Stored first, then told to the team: nothing shown is ever lost.</summary>
    private async Task<ChatMessageDto> StoreAsync(string teamId, string userId, string userName, string text, string? clientId, string? kind,
        CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var message = new ChatMessage { TeamId = teamId, UserId = userId, Content = text, Timestamp = time.GetUtcNow().UtcDateTime, Kind = kind };
        db.Messages.Add(message);
        await db.SaveChangesAsync(cancellationToken);
        events.Publish(teamId, new ChatMessageEvent(message.Id, userId, userName, text, message.Timestamp, clientId, kind));
        return new ChatMessageDto(message.Id, userId, userName, text, message.Timestamp, kind);
    }

    /// <summary>
    /// A page of history, oldest first: the newest messages before <paramref name="before"/>, or
    /// the oldest after <paramref name="after"/> (for catching up after a reconnect).
    /// </summary>
    public async Task<ChatHistoryResponse> HistoryAsync(string teamId, long? before, long? after, int limit, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var query = from m in db.Messages
                    join u in db.Users on m.UserId equals u.Id
                    where m.TeamId == teamId
                    select new { m, u.Name };
        List<ChatMessageDto> page;
        bool more;
        if (after is { } a)
        {
            var rows = await query.Where(x => x.m.Id > a).OrderBy(x => x.m.Id).Take(limit + 1).ToListAsync(cancellationToken);
            more = false;
            page = [.. rows.Take(limit).Select(x => new ChatMessageDto(x.m.Id, x.m.UserId, x.Name, x.m.Content, x.m.Timestamp, x.m.Kind))];
        }
        else
        {
            var filtered = before is { } b ? query.Where(x => x.m.Id < b) : query;
            var rows = await filtered.OrderByDescending(x => x.m.Id).Take(limit + 1).ToListAsync(cancellationToken);
            more = rows.Count > limit;
            page = [.. rows.Take(limit).Reverse().Select(x => new ChatMessageDto(x.m.Id, x.m.UserId, x.Name, x.m.Content, x.m.Timestamp, x.m.Kind))];
        }
        return new ChatHistoryResponse([.. page], more && page.Count > 0 ? page[0].Id : null);
    }
}
