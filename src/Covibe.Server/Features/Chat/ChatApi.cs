using Covibe.Protocol;
using Covibe.Server.Features.Auth;
using Covibe.Server.Http;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Covibe.Server.Features.Chat;

/// <summary>Seed 001's <c>POST /api/chat/message</c> and <c>GET /api/chat/history</c>.</summary>
public static class ChatApi
{
    public static IServiceCollection AddChat(this IServiceCollection services) => services.AddSingleton<ChatService>();

    public static IEndpointRouteBuilder MapChatApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/chat").WithTags("Chat").RequireAuthorization();
        api.MapPost("/message", PostMessage);
        api.MapGet("/history", History);
        return app;
    }

    public static async Task<Results<Created<ChatMessageDto>, ValidationProblem>> PostMessage(
        PostChatMessageRequest request, Caller caller, ChatService chat, CancellationToken cancellationToken)
    {
        if (ChatService.Check(request.Message) is { } problem)
        {
            return Problems.Validation(new() { ["message"] = [problem] });
        }
        var message = await chat.PostAsync(caller, request.Message!, clientId: null, cancellationToken);
        return TypedResults.Created($"/api/chat/history?after={message.Id - 1}", message);
    }

    /// <summary><c>?before=ID</c> pages back; <c>?after=ID</c> catches up; <c>limit</c> is 1 to 200 (default 50).</summary>
    public static async Task<Results<Ok<ChatHistoryResponse>, ValidationProblem>> History(
        Caller caller, ChatService chat, long? before, long? after, int? limit, CancellationToken cancellationToken)
    {
        var v = new Validator();
        if (before is not null && after is not null)
        {
            v.Fail("before", "Use 'before' (page back) or 'after' (catch up), not both.");
        }
        if (limit is < 1 or > ChatService.MaxPageSize)
        {
            v.Fail("limit", $"'limit' must be between 1 and {ChatService.MaxPageSize}.");
        }
        if (!v.IsValid)
        {
            return Problems.Validation(v.Errors);
        }
        return TypedResults.Ok(await chat.HistoryAsync(caller.TeamId, before, after, limit ?? ChatService.DefaultPageSize, cancellationToken));
    }
}
