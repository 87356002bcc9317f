using System.Net;
using System.Net.Http.Json;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>What a team's agents spent (issue 29): over REST for every member of the team, and from the command line.</summary>
public sealed class AgentCostsTests(AgentServerFixture fixture) : IClassFixture<AgentServerFixture>, IDisposable
{
    private readonly string _root = StartupTests.TempDirectory();

    public void Dispose() => StartupTests.Delete(_root);

    [Fact]
    public async Task TheTeamsSpend_IsShownByMemberByDayAndCostliest_ToEveryMember_AndToNoOtherTeam()
    {
        var server = fixture.Server;
        var (owner, member) = await server.CreateTeamWithMemberAsync("Spenders");
        var stranger = await server.CreateTeamAsync("Strangers", "Chen");
        AgentDto[] agents =
        [
            await server.SpawnAsync(owner.Auth.AccessToken, "first haiku", "mock"),
            await server.SpawnAsync(owner.Auth.AccessToken, "second haiku", "mock"),
            await server.SpawnAsync(member.AccessToken, "member's haiku", "mock"),
            await server.SpawnAsync(stranger.Auth.AccessToken, "another team's haiku", "mock"),
        ];
        var ended = new List<AgentDto>();
        foreach (var agent in agents)
        {
            ended.Add(await server.WaitFinishedAsync(agent.OwnerId == stranger.Auth.User.Id ? stranger.Auth.AccessToken : agent.OwnerId == owner.Auth.User.Id ? owner.Auth.AccessToken : member.AccessToken, agent.Id));
        }
        ended.ShouldAllBe(a => a.CostUsd > 0);
        var ours = ended.Where(a => a.TeamId == owner.Auth.Team.Id).ToList();

        // The member sees the whole team's spend, not only their own.
        using var client = server.Client(member.AccessToken);
        var costs = (await client.GetFromJsonAsync<AgentCostsResponse>("/api/agent/costs?days=7"))!;
        costs.Agents.ShouldBe(3);
        costs.TotalUsd.ShouldBe(ours.Sum(a => a.CostUsd!.Value), 1e-9);
        costs.OutputTokens.ShouldBe(ours.Sum(a => a.OutputTokens ?? 0));
        costs.ByMember.Select(m => (m.Name, m.Agents)).ShouldBe([("Sarah", 2), ("Miguel", 1)]);
        costs.ByMember[0].CostUsd.ShouldBe(ours.Where(a => a.OwnerId == owner.Auth.User.Id).Sum(a => a.CostUsd!.Value), 1e-9);
        costs.ByDay.Length.ShouldBe(7);
        costs.ByDay[^1].Day.ShouldBe(costs.To);
        costs.ByDay[^1].CostUsd.ShouldBe(costs.TotalUsd, 1e-9);
        costs.ByDay[..^1].ShouldAllBe(d => d.CostUsd == 0 && d.Agents == 0);
        costs.TopAgents.Select(a => a.Id).ShouldBe(ours.OrderByDescending(a => a.CostUsd).Select(a => a.Id), ignoreOrder: true);
        costs.TopAgents.ShouldNotContain(a => a.Task == "another team's haiku");

        // Another team's member sees their own team's only.
        using var theirs = server.Client(stranger.Auth.AccessToken);
        var theirCosts = (await theirs.GetFromJsonAsync<AgentCostsResponse>("/api/agent/costs"))!;
        theirCosts.Agents.ShouldBe(1);
        theirCosts.ByMember.ShouldHaveSingleItem().Name.ShouldBe("Chen");
        theirCosts.ByDay.Length.ShouldBe(30);

        // A range it cannot answer is refused, saying what it can.
        await (await client.GetAsync("/api/agent/costs?days=0")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "validation");
        await (await client.GetAsync("/api/agent/costs?days=367")).ShouldBeProblemAsync(HttpStatusCode.BadRequest, "validation");
        (await server.Client().GetAsync("/api/agent/costs")).StatusCode.ShouldBe(HttpStatusCode.Unauthorized);

        // From the command line: the total, who spent it, the days and the costliest agents.
        var cli = new CliRunner(Path.Combine(_root, "miguel"));
        (await cli.RunAsync(TestServer.Password, "login", "--server", server.Url.ToString().TrimEnd('/'), "--email", member.User.Email, "--password-stdin")).ExitCode.ShouldBe(0);
        var shown = await cli.RunAsync(null, "agent", "costs", "--days", "7");
        shown.ExitCode.ShouldBe(0, shown.Stderr);
        shown.Stdout.ShouldContain($"${costs.TotalUsd:0.0000} spent by 3 agents");
        shown.Stdout.ShouldContain("Sarah");
        shown.Stdout.ShouldContain("Miguel (you)");
        shown.Stdout.ShouldContain("By day (USD)");
        shown.Stdout.ShouldContain("Costliest agents");
        shown.Stdout.ShouldNotContain("another team");
    }
}
