using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// The team's token goes to the repository's own address only: a repository that answers with a redirect to another host
/// (a compromised or mistyped forge) is refused, and the other host never sees a request, let alone the token.
/// </summary>
public sealed class RepositoryRedirectTests
{
    [Fact]
    public async Task ARepositoryThatRedirects_IsRefused_AndTheTokenNeverReachesWhereItPoints()
    {
        var (forgePort, elsewherePort) = (PostgresServer.FreePort(), PostgresServer.FreePort());
        var seen = new ConcurrentQueue<(string Where, string? Authorization)>();
        using var forge = Listen(forgePort, "forge", seen, context =>
        {
            context.Response.StatusCode = 302;
            context.Response.RedirectLocation = $"http://127.0.0.1:{elsewherePort}{context.Request.Url!.PathAndQuery}";
        });
        using var elsewhere = Listen(elsewherePort, "elsewhere", seen, context => context.Response.StatusCode = 401);

        await using var server = await TestServer.StartAsync();
        var owner = await server.CreateTeamAsync();
        using var ann = server.Client(owner.Auth.AccessToken);
        const string Token = "ghp_redirectedTokenMustStayHome0123";
        using var reply = await ann.PutAsJsonAsync("/api/team/repository", new ConnectRepositoryRequest($"http://127.0.0.1:{forgePort}/acme/app.git", Token: Token));
        ((int)reply.StatusCode).ShouldBeGreaterThanOrEqualTo(400, await reply.Content.ReadAsStringAsync());
        (await reply.Content.ReadAsStringAsync()).ShouldNotContain(Token);

        // The forge was asked, with the token; where it pointed was never asked at all.
        seen.ShouldContain(s => s.Where == "forge" && s.Authorization != null);
        seen.ShouldNotContain(s => s.Where == "elsewhere");
        (await ann.GetAsync("/api/team/repository")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
    }

    private static HttpListener Listen(int port, string name, ConcurrentQueue<(string, string?)> seen, Action<HttpListenerContext> answer)
    {
        var listener = new HttpListener();
        listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        listener.Start();
        _ = Task.Run(async () =>
        {
            while (listener.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await listener.GetContextAsync();
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
                {
                    return;
                }
                seen.Enqueue((name, context.Request.Headers["Authorization"]));
                answer(context);
                context.Response.Close();
            }
        });
        return listener;
    }
}
