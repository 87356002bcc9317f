using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// The operator's metrics (issue 29): Prometheus reads <c>/metrics</c> with the scrape token, and what it reads agrees
/// with what members see: agents running and ended, what they spent, hub connections, API requests.
/// </summary>
public sealed partial class MetricsTests : IAsyncLifetime
{
    private const string ScrapeToken = "scrape-token-for-the-operator-0123456789";
    private TestServer _server = null!;

    public async Task InitializeAsync()
    {
        var settings = AgentHelpers.Settings(mockDelayMs: 20, mockSteps: 3);
        settings["Covibe:Agents:UseMockAgents"] = "false";
        settings["Covibe:Metrics:Token"] = ScrapeToken;
        foreach (var (key, value) in PreviewTests.Settings)
        {
            settings[key] = value;
        }
        _server = await TestServer.StartAsync(settings: settings);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task TheScrape_IsRefusedToAnyoneWithoutTheOperatorsToken_AMemberIncluded()
    {
        var team = await _server.CreateTeamAsync();
        using var anonymous = _server.Client();
        (await (await anonymous.GetAsync("/metrics")).ShouldBeProblemAsync(HttpStatusCode.Unauthorized, "unauthorized")).GetProperty("detail").GetString()!.ShouldNotContain(ScrapeToken);

        using var wrong = _server.Client();
        wrong.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ScrapeToken + "x");
        await (await wrong.GetAsync("/metrics")).ShouldBeProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");

        // A member's own login is not the operator's token.
        using var member = _server.Client(team.Auth.AccessToken);
        await (await member.GetAsync("/metrics")).ShouldBeProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");

        // The operator's token reads them, from the start: what /health says is there before anything happened.
        var first = await ScrapeAsync();
        first.ShouldContain("target_info");
        Value(first, "covibe_database_up", "otel_scope_name").ShouldBe(1);
    }

    [Fact]
    public async Task AServerWithoutAScrapeToken_HasNoMetricsEndpoint()
    {
        await using var server = await TestServer.StartAsync();
        using var client = server.Client();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ScrapeToken);
        (await client.GetAsync("/metrics")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task TheScrape_CountsAgentsRunningAndEnded_WhatTheySpent_HubConnections_AndRequests()
    {
        var team = await _server.CreateTeamAsync();
        var token = team.Auth.AccessToken;
        var hub = await _server.ConnectAsync(); // closed below, to see it no longer counted
        await hub.JoinAsync(team.Auth.Team.Id, token);
        (await ScrapeAsync()).ShouldContain("covibe_hub_connections{otel_scope_name=\"Covibe.Hub\",joined=\"true\",wire=\"json\"} 1");

        // An agent that runs until the test has seen it counted as running.
        var slow = await _server.SpawnAsync(token, "take your time", "slow");
        var running = await Eventually.UntilAsync(ScrapeAsync, m => Value(m, "covibe_agents_running", "place") is > 0, "the slow agent counted as running");
        var place = Label(running, "covibe_agents_running", "place");
        await _server.WaitFinishedAsync(token, slow.Id);

        var mock = await _server.SpawnAsync(token, "write a haiku", "mock");
        var done = await _server.WaitFinishedAsync(token, mock.Id);
        done.Status.ShouldBe("completed");
        done.CostUsd.ShouldNotBeNull();

        var metrics = await Eventually.UntilAsync(ScrapeAsync, m => Value(m, "covibe_agents_ended_total", $"place=\"{place}\",status=\"completed\"") == 2,
            "both agents counted as completed");
        Value(metrics, "covibe_agents_running", "place").GetValueOrDefault().ShouldBe(0);
        // What the agents' own records say they spent and wrote is what the operator reads.
        Value(metrics, "covibe_agents_cost_USD_total", $"place=\"{place}\"")!.Value.ShouldBe(done.CostUsd!.Value, 1e-9);
        var written = (await _server.GetAgentAsync(token, slow.Id)).OutputBytes + done.OutputBytes;
        Value(metrics, "covibe_agents_output_bytes_total", $"place=\"{place}\"").ShouldBe(written);
        Value(metrics, "covibe_agents_tokens_total", "direction=\"output\"").ShouldBe(done.OutputTokens ?? 0);
        // API response times, by route (ASP.NET Core's own metric).
        metrics.ShouldContain("http_route=\"/api/agent/spawn\"");
        metrics.ShouldContain("http_server_request_duration_seconds_bucket");
        // The process, for the seeds' memory and CPU.
        metrics.ShouldContain("dotnet_process_memory_working_set_bytes");
        // No secret of the server's in what is scraped.
        metrics.ShouldNotContain(TestServer.JwtSecret);
        metrics.ShouldNotContain(ScrapeToken);
        metrics.ShouldNotContain(token);

        await hub.DisposeAsync();
        await Eventually.UntilAsync(ScrapeAsync, m => !m.Contains("covibe_hub_connections{otel_scope_name=\"Covibe.Hub\",joined=\"true\",wire=\"json\"} 1"),
            "the closed connection no longer counted");
    }

    [Fact]
    public async Task TheScrape_CountsTerminalSessions_OpenStartedRefusedAndHowLongTheyLasted()
    {
        var team = await _server.CreateTeamAsync();
        await using var terminal = await TerminalClient.ConnectAsync(_server.Url, "/terminal", team.Auth.AccessToken);
        await terminal.CreateAsync("metrics-shell", new { shell = "/bin/sh" });
        var open = await ScrapeAsync();
        Value(open, "covibe_terminals_sessions", "otel_scope_name").ShouldBe(1);
        Value(open, "covibe_terminals_started_total", "outcome=\"ok\"").ShouldBe(1);

        // Refused: the same id again; the client is told why, and the operator counts it by that code.
        await terminal.SendAsync(new { type = "session", action = "create", id = "metrics-shell", config = new { shell = "/bin/sh" } });
        await terminal.ErrorAsync("SESSION_EXISTS");
        await terminal.SendAsync(new { type = "session", action = "close", id = "metrics-shell" });

        var after = await Eventually.UntilAsync(ScrapeAsync, m => Value(m, "covibe_terminals_sessions", "otel_scope_name") == 0, "the closed session no longer open");
        Value(after, "covibe_terminals_started_total", "outcome=\"SESSION_EXISTS\"").ShouldBe(1);
        Value(after, "covibe_terminals_duration_seconds_count", "otel_scope_name").ShouldBe(1);
    }

    [Fact]
    public async Task TheScrape_CountsPreviewDeploysByOutcome_AndHowLongTheyTook()
    {
        using var repo = GitRepo.Create();
        var v1 = repo.Commit("v1", PreviewTests.Site("v1"));
        var team = await _server.CreateTeamAsync();
        using var preview = new PreviewClient(_server, team.Auth.AccessToken);
        await preview.ConnectAsync(repo);
        await preview.LiveAsync(v1);
        var metrics = await Eventually.UntilAsync(ScrapeAsync, m => Value(m, "covibe_previews_deploys_total", "outcome=\"live\"") == 1, "the deploy counted live");
        Value(metrics, "covibe_previews_deploy_duration_seconds_count", "outcome=\"live\"").ShouldBe(1);
        Value(metrics, "covibe_previews_deploys_total", "outcome=\"failed\"").ShouldBeNull();
    }

    [Fact]
    public async Task TheDashboard_QueriesOnlyMetricsTheServerExports()
    {
        var root = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", ".."));
        var dashboard = await File.ReadAllTextAsync(Path.Combine(root, "deploy", "grafana", "covibe.json"));
        var operations = await File.ReadAllTextAsync(Path.Combine(root, "docs", "operations.md"));
        // What a day of a team makes: a member online, an agent run, a terminal opened and closed.
        var team = await _server.CreateTeamAsync();
        var hub = await _server.ConnectAsync();
        await hub.JoinAsync(team.Auth.Team.Id, team.Auth.AccessToken);
        await _server.WaitFinishedAsync(team.Auth.AccessToken, (await _server.SpawnAsync(team.Auth.AccessToken, "a haiku", "mock")).Id);
        await using (var terminal = await TerminalClient.ConnectAsync(_server.Url, "/terminal", team.Auth.AccessToken))
        {
            await terminal.CreateAsync("dashboard-shell", new { shell = "/bin/sh" });
            await terminal.SendAsync(new { type = "session", action = "close", id = "dashboard-shell" });
        }
        var metrics = await Eventually.UntilAsync(ScrapeAsync, m => m.Contains("covibe_terminals_duration_seconds_count", StringComparison.Ordinal), "the closed terminal counted");
        await hub.DisposeAsync();

        // Made only by what this test does not do (a preview, a box, a runner, a cluster, an engine, a slow client): each in docs/operations.md.
        string[] elsewhere = ["covibe_previews_", "covibe_boxes_", "covibe_runners_", "covibe_redis_up", "covibe_engine_up", "covibe_hub_dropped_total"];
        var queried = QueriedMetric().Matches(dashboard).Select(m => Regex.Replace(m.Value, "_(bucket|count|sum)$", "")).Distinct().ToList();
        queried.Count.ShouldBeGreaterThan(15);
        foreach (var name in queried)
        {
            if (elsewhere.Any(name.StartsWith))
            {
                operations.ShouldContain($"`{name}", customMessage: $"the dashboard queries {name}, which docs/operations.md does not list");
            }
            else
            {
                Regex.IsMatch(metrics, $"^{name}(_bucket|_count|_sum)?[{{ ]", RegexOptions.Multiline).ShouldBeTrue($"the dashboard queries {name}, which the server does not export");
            }
        }
    }

    [Fact]
    public async Task AnotherServerInTheSameProcess_IsNotCountedAsThisOne()
    {
        await using var other = await TestServer.StartAsync();
        var team = await other.CreateTeamAsync();
        await using var terminal = await TerminalClient.ConnectAsync(other.Url, "/terminal", team.Auth.AccessToken);
        await terminal.CreateAsync("elsewhere", new { shell = "/bin/sh" });
        var metrics = await ScrapeAsync();
        Value(metrics, "covibe_terminals_sessions", "otel_scope_name").ShouldBe(0);
        Value(metrics, "covibe_terminals_started_total", "outcome").ShouldBeNull();
    }

    private async Task<string> ScrapeAsync()
    {
        using var client = _server.Client();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ScrapeToken);
        using var reply = await client.GetAsync("/metrics");
        var text = await reply.Content.ReadAsStringAsync();
        reply.StatusCode.ShouldBe(HttpStatusCode.OK, text);
        return text;
    }

    /// <summary>The sum of a metric's samples whose labels contain <paramref name="labels"/>; null when it has none.</summary>
    private static double? Value(string metrics, string name, string labels)
    {
        double? sum = null;
        foreach (Match m in Sample().Matches(metrics))
        {
            if (m.Groups["name"].Value == name && m.Groups["labels"].Value.Contains(labels, StringComparison.Ordinal))
            {
                sum = (sum ?? 0) + double.Parse(m.Groups["value"].Value, CultureInfo.InvariantCulture);
            }
        }
        return sum;
    }

    private static string Label(string metrics, string name, string label) =>
        Regex.Match(metrics, $"^{name}{{[^}}]*{label}=\"(?<v>[^\"]+)\"", RegexOptions.Multiline).Groups["v"].Value;

    [GeneratedRegex("\\b(covibe|dotnet|http_server)_[a-zA-Z_]+")]
    private static partial Regex QueriedMetric();

    [GeneratedRegex("^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\\{(?<labels>[^}]*)\\} (?<value>\\S+)", RegexOptions.Multiline)]
    private static partial Regex Sample();
}
