using System.Diagnostics;
using System.Net;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// The one way to read a log from a position over REST (agent output, a deploy's log, a box's log): <c>from</c>, the
/// same headers, and <c>wait</c> for a long poll. Box and preview logs are read this way in their own tests.
/// </summary>
public sealed class LogPagesTests(AgentServerFixture fixture) : IClassFixture<AgentServerFixture>
{
    private TestServer Server => fixture.Server;

    [Fact]
    public async Task AgentOutput_WithWait_AnswersTheNextBytesWhenTheyAreWritten_AndAtTheEndAtOnce()
    {
        var owner = await Server.CreateTeamAsync();
        using var client = Server.Client(owner.Auth.AccessToken);
        // A line every 50 ms: most reads find nothing new yet, and wait for it.
        var agent = await Server.SpawnAsync(owner.Auth.AccessToken, "Sleep between lines", "slow");
        long next = 0;
        var all = new MemoryStream();
        while (true)
        {
            using var reply = await client.GetAsync($"/api/agent/{agent.Id}/output?from={next}&wait=20");
            reply.StatusCode.ShouldBe(HttpStatusCode.OK);
            var bytes = await reply.Content.ReadAsByteArrayAsync();
            var position = Header(reply, "Covibe-Position");
            position.ShouldBe(next, "a page starts where the last one ended");
            Header(reply, "Covibe-Next").ShouldBe(position + bytes.Length);
            // The headers from before the one contract say the same.
            Header(reply, "Covibe-Output-Start").ShouldBe(position);
            Header(reply, "Covibe-Output-Next").ShouldBe(Header(reply, "Covibe-Next"));
            var complete = reply.Headers.GetValues("Covibe-Complete").Single() == "true";
            reply.Headers.GetValues("Covibe-Output-Complete").Single().ShouldBe(complete ? "true" : "false");
            all.Write(bytes);
            next += bytes.Length;
            if (complete)
            {
                break;
            }
            // Waiting means an answer only once there is something to say: never an empty page while the agent runs.
            bytes.ShouldNotBeEmpty("a long poll answers with new output, or at the end");
        }
        all.ToArray().ShouldBe(AgentHelpers.LogOf(Server, agent.Id));

        // At the end there is nothing to wait for: the answer comes at once, empty and complete.
        var clock = Stopwatch.StartNew();
        using var last = await client.GetAsync($"/api/agent/{agent.Id}/output?from={next}&wait=20");
        (await last.Content.ReadAsByteArrayAsync()).ShouldBeEmpty();
        last.Headers.GetValues("Covibe-Complete").Single().ShouldBe("true");
        clock.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(10));
    }

    [Theory]
    [InlineData("/api/agent/{0}/output")]
    [InlineData("/api/preview/deploys/{0}/log")]
    [InlineData("/api/boxes/{0}/log")]
    public async Task ABadPositionOrWait_IsRefusedFieldByField_OnEveryLog(string route)
    {
        var owner = await Server.CreateTeamAsync();
        using var client = Server.Client(owner.Auth.AccessToken);
        var path = string.Format(System.Globalization.CultureInfo.InvariantCulture, route, "anything");
        var problem = await (await client.GetAsync($"{path}?from=-1&wait=31")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "validation");
        problem.GetProperty("errors").GetProperty("from").GetArrayLength().ShouldBe(1);
        problem.GetProperty("errors").GetProperty("wait").GetArrayLength().ShouldBe(1);
        // A good question about a log the team does not have: not found.
        await (await client.GetAsync($"{path}?from=0&wait=1")).ShouldBeProblemAsync(HttpStatusCode.NotFound, "not-found");
    }

    private static long Header(HttpResponseMessage reply, string name) =>
        long.Parse(reply.Headers.GetValues(name).Single(), System.Globalization.CultureInfo.InvariantCulture);
}
