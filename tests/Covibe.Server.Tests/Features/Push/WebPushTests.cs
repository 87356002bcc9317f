using System.Net;
using System.Net.Http.Json;
using System.Text;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// Web Push (issue 26, point 4): an agent's request reaches the approver's phone with the page closed. The push service is a
/// local stand-in that checks the VAPID token and decrypts each message as a browser does (RFC 8291).
/// </summary>
public sealed class WebPushTests
{
    [Fact]
    public async Task APermissionRequest_ReachesTheApproversSubscribedBrowsers_EncryptedAndSigned_AndNobodyElses()
    {
        await using var push = await LocalPushService.StartAsync();
        await using var server = await AgentApprovalTests.StartAsync(s =>
        {
            s["Covibe:Push:AllowPrivateEndpoints"] = "true";
            s["Covibe:Push:Subject"] = "mailto:ops@example.org";
        });
        var (owner, miguel) = await server.CreateTeamWithMemberAsync();
        using var sarah = server.Client(owner.Auth.AccessToken);
        using var miguelApi = server.Client(miguel.AccessToken);
        var key = (await sarah.GetFromJsonAsync<PushKeyResponse>("/api/push/key"))!.PublicKey;
        (await miguelApi.GetFromJsonAsync<PushKeyResponse>("/api/push/key"))!.PublicKey.ShouldBe(key);

        var phone = push.Subscribe("sarah-phone");
        (await sarah.PostAsJsonAsync("/api/push/subscriptions", phone)).StatusCode.ShouldBe(HttpStatusCode.NoContent);
        (await miguelApi.PostAsJsonAsync("/api/push/subscriptions", push.Subscribe("miguel-phone"))).StatusCode.ShouldBe(HttpStatusCode.NoContent);

        var agent = await server.SpawnAsync(owner.Auth.AccessToken, "Run the tests [[write]]", "claude");
        var delivered = await push.ReceiveAsync(d => d.Browser == "sarah-phone");
        delivered.VapidKey.ShouldBe(key);
        delivered.Claims.GetProperty("sub").GetString().ShouldBe("mailto:ops@example.org");
        delivered.Urgency.ShouldBe("high");
        var request = await AgentApprovalTests.WaitForRequestAsync(sarah, agent.Id);
        delivered.Message.GetProperty("title").GetString().ShouldBe("An agent asks to use Bash");
        delivered.Message.GetProperty("body").GetString()!.ShouldStartWith("Bash: npm test");
        delivered.Message.GetProperty("agentId").GetString().ShouldBe(agent.Id);
        delivered.Message.GetProperty("requestId").GetString().ShouldBe(request.RequestId);
        delivered.Message.GetProperty("url").GetString().ShouldBe($"/?agent={agent.Id}");
        // Miguel does not control the agent: his phone hears nothing of it.
        push.Count("miguel-phone").ShouldBe(0);

        // Handed to him, the next request reaches his phone too.
        (await sarah.PostAsJsonAsync($"/api/agent/{agent.Id}/control", new GrantControlRequest(miguel.User.Id))).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await miguelApi.PostAsync($"/api/agent/{agent.Id}/control/ask", null)).StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await sarah.PostAsJsonAsync($"/api/agent/{agent.Id}/approve", new ApproveRequest(request.RequestId))).StatusCode.ShouldBe(HttpStatusCode.OK);
        var write = await push.ReceiveAsync(d => d.Browser == "miguel-phone");
        write.Message.GetProperty("title").GetString().ShouldBe("An agent asks to use Write");
        (await miguelApi.PostAsJsonAsync($"/api/agent/{agent.Id}/deny", new DenyRequest(write.Message.GetProperty("requestId").GetString(), "not now"))).StatusCode.ShouldBe(HttpStatusCode.OK);
        await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id, TimeSpan.FromSeconds(30));

        // Nothing of a subscription is on disk in plaintext: not its endpoint, not its secret (the database and its
        // write-ahead log, where the row is: its endpoint's hash is found there).
        var text = string.Concat(Directory.GetFiles(server.DataDirectory, "covibe.db*").Select(f => Encoding.Latin1.GetString(File.ReadAllBytes(f))));
        text.ShouldContain(Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(phone.Endpoint!))));
        text.ShouldNotContain(phone.Endpoint!);
        text.ShouldNotContain(phone.Keys!.Auth!);
    }

    [Fact]
    public async Task AGoneSubscription_IsForgotten_BadOnesAreRefused_AndPrivateEndpointsOnlyWhereAllowed()
    {
        await using var push = await LocalPushService.StartAsync();
        await using (var strict = await TestServer.StartAsync(settings: AgentHelpers.Settings()))
        {
            var owner = await strict.CreateTeamAsync();
            using var api = strict.Client(owner.Auth.AccessToken);
            // A member must not make the server call into its own network.
            var problem = await ProblemAssertions.ShouldBeValidationProblemAsync(await api.PostAsJsonAsync("/api/push/subscriptions", push.Subscribe("x")), "subscription");
            problem.ShouldContain("push service on the internet");
            await ProblemAssertions.ShouldBeValidationProblemAsync(
                await api.PostAsJsonAsync("/api/push/subscriptions", new PushSubscriptionRequest("https://10.0.0.5/push", push.Subscribe("y").Keys)), "subscription");
        }

        await using var server = await TestServer.StartAsync(settings: new Dictionary<string, string>(AgentHelpers.Settings()) { ["Covibe:Push:AllowPrivateEndpoints"] = "true" });
        var sarah = await server.CreateTeamAsync();
        using var client = server.Client(sarah.Auth.AccessToken);
        var good = push.Subscribe("good");
        await ProblemAssertions.ShouldBeValidationProblemAsync(
            await client.PostAsJsonAsync("/api/push/subscriptions", good with { Keys = good.Keys! with { Auth = "c2hvcnQ" } }), "subscription");
        await ProblemAssertions.ShouldBeValidationProblemAsync(
            await client.PostAsJsonAsync("/api/push/subscriptions", good with { Keys = good.Keys! with { P256dh = "bm90IGEga2V5" } }), "subscription");

        var gone = push.Subscribe("gone", status: 410);
        (await client.PostAsJsonAsync("/api/push/subscriptions", gone)).StatusCode.ShouldBe(HttpStatusCode.NoContent);
        (await client.PostAsJsonAsync("/api/push/subscriptions", good)).StatusCode.ShouldBe(HttpStatusCode.NoContent);
        (await client.PostAsync("/api/push/test", null)).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        (await push.ReceiveAsync(d => d.Browser == "good")).Message.GetProperty("body").GetString().ShouldBe("Notifications reach this device.");
        // The push service said 410 Gone: the subscription is forgotten, and the next notification is not sent there
        // (notifications go out in order: the second reaches "good" after the first was done with "gone").
        (await client.PostAsync("/api/push/test", null)).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        await push.ReceiveAsync(d => d.Browser == "good");
        push.Count("gone").ShouldBe(1);
        await (await client.PostAsJsonAsync("/api/push/subscriptions/remove", gone)).ShouldBeProblemAsync(HttpStatusCode.NotFound, "not-found");
        (await client.PostAsJsonAsync("/api/push/subscriptions/remove", good)).StatusCode.ShouldBe(HttpStatusCode.NoContent);
    }
}
