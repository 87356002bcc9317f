using System.Net;
using System.Net.Http.Json;
using System.Text;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>Chat over REST: history, paging, limits, teams kept apart. Runs on SQLite and on PostgreSQL.</summary>
public abstract class ChatApiTests
{
    protected abstract Task<TestServer> ServerAsync();

    [Fact]
    public async Task Chat_PostThenHistory_PagesBackAndCatchesUp()
    {
        var server = await ServerAsync();
        var (owner, member) = await server.CreateTeamWithMemberAsync();
        using var client = server.Client(owner.Auth.AccessToken);
        var posted = new List<ChatMessageDto>();
        for (var i = 0; i < 7; i++)
        {
            using var reply = await client.PostAsJsonAsync("/api/chat/message", new PostChatMessageRequest($"message {i}"));
            reply.StatusCode.ShouldBe(HttpStatusCode.Created);
            posted.Add((await reply.Content.ReadFromJsonAsync<ChatMessageDto>())!);
        }
        posted.Select(p => p.Id).ShouldBeInOrder();
        posted[0].UserName.ShouldBe("Sarah");

        using var memberClient = server.Client(member.AccessToken);
        var latest = (await memberClient.GetFromJsonAsync<ChatHistoryResponse>("/api/chat/history?limit=3"))!;
        latest.Messages.Select(m => m.Message).ShouldBe(["message 4", "message 5", "message 6"]);
        latest.NextBefore.ShouldBe(posted[4].Id);
        var older = (await memberClient.GetFromJsonAsync<ChatHistoryResponse>($"/api/chat/history?limit=3&before={latest.NextBefore}"))!;
        older.Messages.Select(m => m.Message).ShouldBe(["message 1", "message 2", "message 3"]);
        var oldest = (await memberClient.GetFromJsonAsync<ChatHistoryResponse>($"/api/chat/history?limit=3&before={older.NextBefore}"))!;
        oldest.Messages.Select(m => m.Message).ShouldBe(["message 0"]);
        oldest.NextBefore.ShouldBeNull();

        var missed = (await memberClient.GetFromJsonAsync<ChatHistoryResponse>($"/api/chat/history?after={posted[4].Id}"))!;
        missed.Messages.Select(m => m.Message).ShouldBe(["message 5", "message 6"]);
    }

    [Fact]
    public async Task Chat_OtherTeam_SeesNoneOfIt()
    {
        var server = await ServerAsync();
        var a = await server.CreateTeamAsync("A");
        var b = await server.CreateTeamAsync("B");
        using var aClient = server.Client(a.Auth.AccessToken);
        (await aClient.PostAsJsonAsync("/api/chat/message", new PostChatMessageRequest("secret plans"))).StatusCode.ShouldBe(HttpStatusCode.Created);
        using var bClient = server.Client(b.Auth.AccessToken);
        var history = (await bClient.GetFromJsonAsync<ChatHistoryResponse>("/api/chat/history"))!;
        history.Messages.ShouldBeEmpty();
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData(null)]
    public async Task Chat_BlankMessage_ReturnsValidationProblem(string? message)
    {
        var server = await ServerAsync();
        var owner = await server.CreateTeamAsync();
        using var client = server.Client(owner.Auth.AccessToken);
        var problem = await (await client.PostAsJsonAsync("/api/chat/message", new PostChatMessageRequest(message))).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "validation");
        problem.GetProperty("errors").TryGetProperty("message", out _).ShouldBeTrue();
    }

    [Fact]
    public async Task Chat_TooLongMessage_IsRefusedAndNothingIsStored()
    {
        var server = await ServerAsync();
        var owner = await server.CreateTeamAsync();
        using var client = server.Client(owner.Auth.AccessToken);
        await (await client.PostAsJsonAsync("/api/chat/message", new PostChatMessageRequest(new string('x', 4001)))).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "validation");
        (await client.GetFromJsonAsync<ChatHistoryResponse>("/api/chat/history"))!.Messages.ShouldBeEmpty();
    }

    [Theory]
    [InlineData("?limit=0")]
    [InlineData("?limit=201")]
    [InlineData("?before=5&after=3")]
    public async Task Chat_BadHistoryQuery_ReturnsValidationProblem(string query)
    {
        var server = await ServerAsync();
        var owner = await server.CreateTeamAsync();
        using var client = server.Client(owner.Auth.AccessToken);
        await (await client.GetAsync("/api/chat/history" + query)).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "validation");
    }
}

public sealed class SqliteChatApiTests(SqliteServerFixture fixture) : ChatApiTests, IClassFixture<SqliteServerFixture>
{
    protected override Task<TestServer> ServerAsync() => Task.FromResult(fixture.Server);
}

[Collection(PostgresGroup.Name)]
public sealed class PostgresChatApiTests(PostgresServer postgres) : ChatApiTests
{
    protected override Task<TestServer> ServerAsync() => postgres.SharedServerAsync();
}
