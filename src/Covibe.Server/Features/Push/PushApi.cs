using Covibe.Protocol;
using Covibe.Server.Features.Auth;
using Covibe.Server.Http;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Covibe.Server.Features.Push;

/// <summary><c>/api/push</c>: the server's VAPID key, and members' browser subscriptions (issue 26, point 4).</summary>
public static class PushApi
{
    public static IServiceCollection AddPush(this IServiceCollection services)
    {
        services.AddOptions<PushOptions>().BindConfiguration(PushOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<PushService>();
        services.AddSingleton<Secrets.ISealedSecrets, PushSecrets>();
        services.AddSingleton<Secrets.ISealedSecrets, VapidKeySecrets>();
        services.AddHostedService(sp => sp.GetRequiredService<PushService>());
        return services;
    }

    public static IEndpointRouteBuilder MapPushApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/push").WithTags("Push").RequireAuthorization();
        api.MapGet("/key", Key);
        api.MapPost("/subscriptions", Subscribe);
        api.MapPost("/subscriptions/remove", Unsubscribe);
        api.MapPost("/test", Test);
        return app;
    }

    public static async Task<Ok<PushKeyResponse>> Key(PushService push, CancellationToken cancellationToken) =>
        TypedResults.Ok(new PushKeyResponse(await push.PublicKeyAsync(cancellationToken)));

    public static async Task<Results<NoContent, ProblemHttpResult>> Subscribe(PushSubscriptionRequest request, Caller caller, PushService push, CancellationToken cancellationToken) =>
        await push.SubscribeAsync(caller, request, cancellationToken) is { } problem
            ? Problems.ValidationAsProblem(new() { ["subscription"] = [problem] })
            : TypedResults.NoContent();

    /// <summary>The endpoint goes in the body, not the address: it is a capability, kept out of logs.</summary>
    public static async Task<Results<NoContent, ProblemHttpResult>> Unsubscribe(PushSubscriptionRequest request, Caller caller, PushService push, CancellationToken cancellationToken) =>
        await push.UnsubscribeAsync(caller, request.Endpoint ?? "", cancellationToken)
            ? TypedResults.NoContent()
            : Problems.NotFound("Subscription", "You have no push subscription with that endpoint.");

    /// <summary>A test notification to the caller's browsers: to check that a phone hears Covibe with the page closed.</summary>
    public static Accepted Test(Caller caller, PushService push)
    {
        push.Notify([caller.UserId], caller.TeamId, new PushNote("Covibe", "Notifications reach this device.", "/", "covibe-test"));
        return TypedResults.Accepted((string?)null);
    }
}
