using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// Budgets (issue 29): the owner sets what the team's agents, or a member's, may spend a day or a month, within the operator's
/// ceiling; at the limit new agents are refused with why, the running ones keep running and their watchers are warned, and
/// the owner's phone hears of it once.
/// </summary>
[Collection(PostgresGroup.Name)]
public sealed class AgentBudgetsTests(PostgresServer postgres) : IDisposable
{
    private readonly string _root = StartupTests.TempDirectory();

    public void Dispose() => StartupTests.Delete(_root);

    internal static Dictionary<string, string> Settings()
    {
        var settings = AgentHelpers.Settings();
        var path = $"{ClaudeServerFixture.FakeDirectory}:{Environment.GetEnvironmentVariable("PATH")}";
        settings["Covibe:Agents:Types:claude:Environment:PATH"] = path;
        settings["Covibe:Agents:Types:claude-chat:Environment:PATH"] = path;
        settings["Covibe:Agents:Budgets:TeamUsdPerDay"] = "5";
        settings["Covibe:Agents:MaxActivePerTeam"] = "200";
        settings["Covibe:Agents:SpawnsPerMinute"] = "1000";
        settings["Covibe:Push:AllowPrivateEndpoints"] = "true";
        return settings;
    }

    [Fact]
    public async Task ASpentBudget_RefusesNewAgents_WarnsTheRunningOnes_AndTellsTheOwnerOnce()
    {
        await using var push = await LocalPushService.StartAsync();
        await using var server = await TestServer.StartAsync(settings: Settings());
        var (owner, miguel) = await server.CreateTeamWithMemberAsync("Budgeted");
        var stranger = await server.CreateTeamAsync("Strangers", "Chen");
        using var sarah = server.Client(owner.Auth.AccessToken);
        using var miguelApi = server.Client(miguel.AccessToken);
        (await sarah.PostAsJsonAsync("/api/push/subscriptions", push.Subscribe("sarah-phone"))).StatusCode.ShouldBe(HttpStatusCode.NoContent);
        await using var watcher = await HubClient.ConnectAsync(server.Url);
        await watcher.JoinAsync(owner.Auth.Team.Id, owner.Auth.AccessToken);

        // Only the owner sets budgets, within the operator's ceiling, and only for their own members.
        await (await miguelApi.PutAsJsonAsync("/api/team/budgets", new SetBudgetRequest("team", null, "day", 1))).ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        (await ProblemAssertions.ShouldBeValidationProblemAsync(await sarah.PutAsJsonAsync("/api/team/budgets", new SetBudgetRequest("team", null, "day", 6)), "limitUsd"))
            .ShouldContain("ceiling for a team is $5.00");
        await ProblemAssertions.ShouldBeValidationProblemAsync(await sarah.PutAsJsonAsync("/api/team/budgets", new SetBudgetRequest("team", null, "week", 1)), "period");
        await ProblemAssertions.ShouldBeValidationProblemAsync(await sarah.PutAsJsonAsync("/api/team/budgets", new SetBudgetRequest("team", null, "day", -1)), "limitUsd");
        await ProblemAssertions.ShouldBeValidationProblemAsync(await sarah.PutAsJsonAsync("/api/team/budgets", new SetBudgetRequest("member", stranger.Auth.User.Id, "day", 1)), "memberId");
        (await sarah.GetFromJsonAsync<TeamBudgetsResponse>("/api/team/budgets"))!.Budgets.ShouldBeEmpty(); // nothing half-set

        var set = await (await sarah.PutAsJsonAsync("/api/team/budgets", new SetBudgetRequest("team", null, "day", 0.02))).Content.ReadFromJsonAsync<TeamBudgetsResponse>();
        set!.WarnedAgents.ShouldBeEmpty();
        var seen = (await miguelApi.GetFromJsonAsync<TeamBudgetsResponse>("/api/team/budgets"))!;
        seen.Ceiling.TeamUsdPerDay.ShouldBe(5);
        var budget = seen.Budgets.ShouldHaveSingleItem();
        (budget.Scope, budget.Period, budget.LimitUsd, budget.SpentUsd, budget.Reached, budget.SetBy).ShouldBe(("team", "day", 0.02, 0.0, false, "Sarah"));
        (await server.Client(stranger.Auth.AccessToken).GetFromJsonAsync<TeamBudgetsResponse>("/api/team/budgets"))!.Budgets.ShouldBeEmpty();

        // A conversation spends its first turn ($0.0125) and waits; a second agent's turn takes the team past $0.02.
        var chat = await server.SpawnAsync(miguel.AccessToken, "First question", "claude-chat");
        await Eventually.UntilAsync(() => server.GetAgentAsync(miguel.AccessToken, chat.Id), a => a.Status == "waiting" && a.CostUsd > 0, "the conversation waits after its first turn");
        var second = await server.SpawnAsync(miguel.AccessToken, "Second question", "claude");
        var reached = await watcher.ReceiveAsync("budget_reached", TimeSpan.FromSeconds(30));
        reached.GetProperty("scope").GetString().ShouldBe("team");
        reached.GetProperty("period").GetString().ShouldBe("day");
        reached.GetProperty("limitUsd").GetDouble().ShouldBe(0.02);
        reached.GetProperty("spentUsd").GetDouble().ShouldBe(0.025, 1e-9);
        reached.GetProperty("agentIds").EnumerateArray().Select(a => a.GetString()).ShouldContain(chat.Id);
        reached.GetProperty("message").GetString()!.ShouldStartWith("The team's daily budget of $0.02 is reached ($0.025 today): new agents are refused until 00:00 UTC");
        var note = await push.ReceiveAsync(d => d.Browser == "sarah-phone");
        note.Message.GetProperty("title").GetString().ShouldBe("Budget reached");
        note.Message.GetProperty("body").GetString().ShouldBe(reached.GetProperty("message").GetString());

        // New agents are refused, over REST and the hub, saying which budget and until when; nothing of them is saved.
        var before = (await miguelApi.GetFromJsonAsync<AgentListResponse>("/api/agent/list"))!.Agents.Length;
        var refused = await (await miguelApi.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("Third", "claude"))).ShouldBeProblemAsync(HttpStatusCode.TooManyRequests, "budget-spent");
        refused.GetProperty("detail").GetString().ShouldBe(
            "Your team's daily budget of $0.02 is spent ($0.025 today). New agents can start again at 00:00 UTC, or when your team's owner raises it (PUT /api/team/budgets).");
        await watcher.SendAsync(new { type = "agent_spawn", task = "Fourth", agentType = "claude", clientId = "c-4" });
        var error = await watcher.ReceiveAsync("error");
        error.GetProperty("code").GetString().ShouldBe("budget_spent");
        error.GetProperty("error").GetString()!.ShouldContain("daily budget of $0.02 is spent");
        (await miguelApi.GetFromJsonAsync<AgentListResponse>("/api/agent/list"))!.Agents.Length.ShouldBe(before);

        // The running conversation is not stopped: it takes more input and spends on; the owner is not told twice.
        (await miguelApi.PostAsJsonAsync($"/api/agent/{chat.Id}/input", new AgentInputRequest("Another question"))).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        await Eventually.UntilAsync(() => server.GetAgentAsync(miguel.AccessToken, chat.Id), a => a.Status == "waiting" && a.CostUsd >= 0.025 - 1e-9, "its second turn is spent");
        await watcher.ExpectNoneAsync("budget_reached", TimeSpan.FromSeconds(1));
        push.Count("sarah-phone").ShouldBe(1);
        (await server.WaitFinishedAsync(miguel.AccessToken, second.Id)).Status.ShouldBe("completed");

        // Raised, new agents start again; a budget of Miguel's own stops his and nobody else's.
        (await sarah.PutAsJsonAsync("/api/team/budgets", new SetBudgetRequest("team", null, "day", 1))).StatusCode.ShouldBe(HttpStatusCode.OK);
        await server.SpawnAsync(miguel.AccessToken, "Fifth", "claude");
        var own = await (await sarah.PutAsJsonAsync("/api/team/budgets", new SetBudgetRequest("member", miguel.User.Id, "day", 0.01))).Content.ReadFromJsonAsync<TeamBudgetsResponse>();
        own!.WarnedAgents.ShouldContain(chat.Id); // already over it: his running agents' watchers are warned at once
        var mine = await watcher.ReceiveAsync("budget_reached");
        mine.GetProperty("memberName").GetString().ShouldBe("Miguel");
        (await (await miguelApi.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("Sixth", "claude"))).ShouldBeProblemAsync(HttpStatusCode.TooManyRequests, "budget-spent"))
            .GetProperty("detail").GetString()!.ShouldStartWith("Your daily budget of $0.01 is spent");
        await server.SpawnAsync(owner.Auth.AccessToken, "Sarah's own", "claude");
        var listed = (await miguelApi.GetFromJsonAsync<TeamBudgetsResponse>("/api/team/budgets"))!;
        listed.Budgets.Select(b => (b.Scope, b.MemberName, b.Reached)).ShouldBe([("team", null, false), ("member", "Miguel", true)]);
        listed.TeamTodayUsd.ShouldBeGreaterThanOrEqualTo(0.0375 - 1e-9); // the conversation's two turns and the second agent's one, at least

        // Removed, it no longer stops him.
        (await sarah.PutAsJsonAsync("/api/team/budgets", new SetBudgetRequest("member", miguel.User.Id, "day", null))).StatusCode.ShouldBe(HttpStatusCode.OK);
        await server.SpawnAsync(miguel.AccessToken, "Seventh", "claude");

        // From the command line: the owner sets one, a member reads where it stands.
        var cli = new CliRunner(Path.Combine(_root, "sarah"));
        (await cli.RunAsync(TestServer.Password, "login", "--server", server.Url.ToString().TrimEnd('/'), "--email", owner.Auth.User.Email, "--password-stdin")).ExitCode.ShouldBe(0);
        var changed = await cli.RunAsync(null, "agent", "budget", "set", "3", "--per", "month", "--each-member");
        changed.ExitCode.ShouldBe(0, changed.Stderr);
        changed.Stdout.ShouldContain("Each member (you)");
        var tooHigh = await cli.RunAsync(null, "agent", "budget", "set", "7", "--per", "day");
        tooHigh.ExitCode.ShouldNotBe(0);
        tooHigh.Stderr.ShouldContain("ceiling for a team is $5.00");
        var shown = await cli.RunAsync(null, "agent", "budget", "show");
        shown.Stdout.ShouldContain("This server's ceiling for a team: $5.00 a day, no limit a month.");
        shown.Stdout.ShouldContain("The team");
    }

    [Fact]
    public async Task TheOperatorsCeiling_StopsATeamThatSetNoBudget_AndSaysWhoseLimitItIs()
    {
        var settings = Settings();
        settings["Covibe:Agents:Budgets:TeamUsdPerDay"] = "0.01";
        await using var server = await TestServer.StartAsync(settings: settings);
        var owner = await server.CreateTeamAsync("Unbudgeted", "Ines");
        await using var watcher = await HubClient.ConnectAsync(server.Url);
        await watcher.JoinAsync(owner.Auth.Team.Id, owner.Auth.AccessToken);
        using var api = server.Client(owner.Auth.AccessToken);
        (await api.GetFromJsonAsync<TeamBudgetsResponse>("/api/team/budgets"))!.Budgets.ShouldBeEmpty();

        // Its first agent spends $0.0125: past the server's ceiling, though the owner set nothing.
        var first = await server.SpawnAsync(owner.Auth.AccessToken, "A question", "claude");
        (await server.WaitFinishedAsync(owner.Auth.AccessToken, first.Id)).Status.ShouldBe("completed");
        var reached = await watcher.ReceiveAsync("budget_reached", TimeSpan.FromSeconds(30));
        reached.GetProperty("scope").GetString().ShouldBe("server");
        var refused = await (await api.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("Another", "claude"))).ShouldBeProblemAsync(HttpStatusCode.TooManyRequests, "budget-spent");
        refused.GetProperty("detail").GetString().ShouldBe(
            "This server's daily ceiling for a team, $0.01, is spent ($0.0125 today). New agents can start again at 00:00 UTC, or when its operator raises Covibe:Agents:Budgets:TeamUsdPerDay.");
    }

    /// <summary>
    /// A budget change races a spawn, many times: each spawn is judged by the budget before the change (then the change,
    /// read after it, counts it among the running agents it warns of) or after it (then it is refused), never by half of each.
    /// </summary>
    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task ABudgetChangeRacingASpawn_ExactlyOneRuleWins(string database)
    {
        await using var server = await TestServer.StartAsync(postgres: database == "postgres" ? await postgres.CreateDatabaseAsync() : null, settings: Settings());
        var owner = await server.CreateTeamAsync("Racers");
        using var api = server.Client(owner.Auth.AccessToken);
        using var spawner = server.Client(owner.Auth.AccessToken);
        var (admitted, refused) = (0, 0);
        for (var round = 0; round < 25; round++)
        {
            (await api.PutAsJsonAsync("/api/team/budgets", new SetBudgetRequest("team", null, "day", null))).StatusCode.ShouldBe(HttpStatusCode.OK);
            var change = api.PutAsJsonAsync("/api/team/budgets", new SetBudgetRequest("team", null, "day", 0));
            var spawn = spawner.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest($"Round {round}", "echo"));
            await Task.WhenAll(change, spawn);
            var changed = (await (await change).Content.ReadFromJsonAsync<TeamBudgetsResponse>())!;
            using var spawned = await spawn;
            if (spawned.StatusCode == HttpStatusCode.Created)
            {
                var agent = (await spawned.Content.ReadFromJsonAsync<AgentDto>())!;
                changed.WarnedAgents.ShouldContain(agent.Id, $"round {round}: the agent was admitted, so the change (which refused it otherwise) came after it and saw it running");
                admitted++;
            }
            else
            {
                (await spawned.ShouldBeProblemAsync(HttpStatusCode.TooManyRequests, "budget-spent")).GetProperty("detail").GetString()!.ShouldContain("$0.00");
                refused++;
            }
            var agents = (await api.GetFromJsonAsync<AgentListResponse>("/api/agent/list"))!.Agents;
            agents.Length.ShouldBe(admitted, $"round {round}: a refused spawn leaves nothing behind");
        }
        (admitted + refused).ShouldBe(25);
        foreach (var agent in (await api.GetFromJsonAsync<AgentListResponse>("/api/agent/list"))!.Agents)
        {
            await api.DeleteAsync($"/api/agent/{agent.Id}");
        }
    }
}
