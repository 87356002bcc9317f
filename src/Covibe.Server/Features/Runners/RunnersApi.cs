using System.Net.WebSockets;
using System.Text.Json;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Vms;
using Covibe.Server.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Covibe.Server.Features.Auth;
using Covibe.Web;

namespace Covibe.Server.Features.Runners;

/// <summary>
/// What a runner calls (no member login; its own credential as a bearer token): register (the one-time token for its
/// credential), connect (a WebSocket), poll (HTTPS long polling, for networks that block WebSockets), rotate.
/// </summary>
public static partial class RunnersApi
{
    private const int MaxMessageBytes = 4 * 1024 * 1024;

    public static IServiceCollection AddRunners(this IServiceCollection services)
    {
        services.AddOptions<RunnersOptions>().BindConfiguration(RunnersOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<RunnerTerminals>();
        services.AddSingleton<RunnerHub>();
        services.AddSingleton<RunnerMetrics>();
        services.AddSingleton<Hosting.IMetricsSource>(sp => sp.GetRequiredService<RunnerMetrics>());
        services.AddSingleton<RunnerService>();
        services.AddSingleton<IRunnerVms>(sp => sp.GetRequiredService<RunnerService>());
        services.AddSingleton<RunnerBackend>();
        services.AddSingleton(sp => new Execution.NamedBackend(RunnerBackend.BackendName, new Lazy<Execution.IExecutionBackend>(sp.GetRequiredService<RunnerBackend>)));
        return services;
    }

    public static IEndpointRouteBuilder MapRunnersApi(this IEndpointRouteBuilder app)
    {
        var runner = app.MapGroup("/api/runner").WithTags("Runners");
        runner.MapPost("/register", Register).AddEndpointFilter<AttemptFilter>();
        runner.MapGet("/connect", Connect);
        runner.MapPost("/poll", Poll);
        runner.MapPost("/rotate", Rotate);
        runner.MapPost("/confirm", Confirm);

        var owner = app.MapGroup("/api/vm").WithTags("VMs").RequireAuthorization();
        owner.MapPost("/{id}/registration-token", RegistrationTokenAsync);
        owner.MapPost("/{id}/revoke", RevokeAsync);
        owner.MapPost("/{id}/rotate", RequestRotationAsync);
        owner.MapGet("/{id}/audit", AuditAsync);
        return app;
    }

    public static async Task<Ok<RunnerRegisterResponse>> Register(RunnerRegisterRequest request, RunnerService runners, CancellationToken cancellationToken) =>
        TypedResults.Ok(await runners.ExchangeAsync(request, cancellationToken));

    public static async Task<Ok<RunnerRotateResponse>> Rotate(HttpContext context, RunnerService runners, CancellationToken cancellationToken)
    {
        var credential = RunnerTokens.FromRequest(context.Request);
        var vm = await runners.AuthenticateAsync(credential, cancellationToken);
        return TypedResults.Ok(await runners.RotateAsync(vm, credential!, cancellationToken));
    }

    /// <summary>The runner saved its new credential and proves it: the old one stops working.</summary>
    public static async Task<NoContent> Confirm(HttpContext context, RunnerService runners, CancellationToken cancellationToken)
    {
        await runners.AuthenticateAsync(RunnerTokens.FromRequest(context.Request), cancellationToken);
        return TypedResults.NoContent();
    }

    /// <summary>The runner's WebSocket: JSON text messages both ways (docs/runner-protocol.md).</summary>
    public static async Task<IResult> Connect(
        HttpContext context, RunnerService runners, RunnerHub hub, VmAuditLog audit, IHostApplicationLifetime lifetime, ILogger<RunnerHub> logger, CancellationToken cancellationToken)
    {
        var vm = await runners.AuthenticateAsync(RunnerTokens.FromRequest(context.Request), cancellationToken);
        if (!context.WebSockets.IsWebSocketRequest)
        {
            return Problems.BadRequest("websocket-required", "WebSocket required", "Connect with a WebSocket upgrade, or use POST /api/runner/poll (long polling).");
        }
        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        using var outbox = new Outbox(socket, new OutboxOptions(RunnerSession.QueueCapacity));
        using var session = RunnerSession.OverWebSocket(vm.Id, vm.TeamId, vm.UserId, outbox);
        var sending = outbox.RunAsync(context.RequestAborted);
        await hub.AttachAsync(session, cancellationToken);
        // Once the session ends (revoked, replaced), the runner has the outbox's moment to answer our close frame, then the socket goes.
        // A server stopping lets its runners go at once (they connect again, to another node or to it once it is back):
        // an open socket would otherwise hold the stop for the host's whole shutdown timeout.
        using var receiving = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, outbox.CloseDeadline, lifetime.ApplicationStopping);
        try
        {
            await ReceiveAsync(socket, session, hub, logger, receiving.Token);
        }
        finally
        {
            session.Close(lifetime.ApplicationStopping.IsCancellationRequested ? (int)WebSocketCloseStatus.EndpointUnavailable : 1000,
                lifetime.ApplicationStopping.IsCancellationRequested ? "the server is stopping" : "closed");
            outbox.Complete();
            await sending;
            await hub.DetachAsync(session);
            await audit.WriteAsync(vm.Id, vm.TeamId, VmAuditLog.Runner, null, "runner.disconnect", session.CloseReason, CancellationToken.None);
        }
        return TypedResults.Empty;
    }

    private static async Task ReceiveAsync(WebSocket socket, RunnerSession session, RunnerHub hub, ILogger logger, CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        using var message = new MemoryStream();
        try
        {
            // Not cancelled when the session ends, only 2 s after our close frame went out (the outbox's CloseDeadline): the frame and its code get out first.
            while (socket.State is WebSocketState.Open or WebSocketState.CloseSent)
            {
                var result = await socket.ReceiveAsync(buffer, cancellationToken);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return;
                }
                message.Write(buffer, 0, result.Count);
                if (message.Length > MaxMessageBytes)
                {
                    session.Close((int)WebSocketCloseStatus.MessageTooBig, $"A message is larger than {MaxMessageBytes} bytes.");
                    return;
                }
                if (!result.EndOfMessage)
                {
                    continue;
                }
                RunnerMessage? parsed = null;
                try
                {
                    parsed = JsonSerializer.Deserialize(message.GetBuffer().AsSpan(0, (int)message.Length), CovibeJsonContext.Default.RunnerMessage);
                }
                catch (JsonException)
                {
                }
                message.SetLength(0);
                if (parsed?.Type is null)
                {
                    session.Send(new RunnerMessage(RunnerProtocol.Error, Error: "Not a runner message: JSON with a 'type' is expected (docs/runner-protocol.md)."));
                    continue;
                }
                if (!session.Closed.IsCancellationRequested)
                {
                    await hub.HandleAsync(session, parsed, cancellationToken);
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException)
        {
            RunnersLog.ConnectionEnded(logger, session.VmId, e.Message);
        }
    }

    /// <summary>
    /// Seed 001's polling: the runner sends what it has and gets what the server has for it, waiting up to
    /// <see cref="RunnersOptions.PollWaitSeconds"/> when there is nothing. The same messages as over the WebSocket.
    /// </summary>
    public static async Task<Results<Ok<RunnerPollReply>, ProblemHttpResult>> Poll(
        RunnerPoll poll, HttpContext context, RunnerService runners, RunnerHub hub, IOptions<RunnersOptions> options, IHostApplicationLifetime lifetime,
        CancellationToken cancellationToken)
    {
        var vm = await runners.AuthenticateAsync(RunnerTokens.FromRequest(context.Request), cancellationToken);
        var session = await runners.PollSessionAsync(vm, poll.Session, cancellationToken);
        foreach (var message in poll.Messages ?? [])
        {
            if (message?.Type is null)
            {
                session.Send(new RunnerMessage(RunnerProtocol.Error, Error: "Not a runner message: a 'type' is expected."));
                continue;
            }
            await hub.HandleAsync(session, message, cancellationToken);
        }
        var replies = new List<RunnerMessage>();
        // A server stopping answers a waiting poll at once (with nothing), rather than holding its stop.
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, session.Closed, lifetime.ApplicationStopping);
        wait.CancelAfter(poll.Wait ? TimeSpan.FromSeconds(options.Value.PollWaitSeconds) : TimeSpan.Zero);
        try
        {
            if (poll.Wait && !session.Outbound.TryPeek(out _))
            {
                await session.Outbound.WaitToReadAsync(wait.Token);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
        }
        while (replies.Count < 1000 && session.Outbound.TryRead(out var next))
        {
            replies.Add(next);
        }
        runners.Polled(session);
        if (session.CloseCode is RunnerProtocol.ClosedRevoked)
        {
            return Problems.Create(401, "runner-credential-invalid", "Runner credential refused", "This runner was revoked by its VM's owner. Register it again with a new registration token.");
        }
        return TypedResults.Ok(new RunnerPollReply([.. replies], session.PollId!));
    }
}
