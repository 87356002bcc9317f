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

        (await ScrapeAsync()).ShouldContain("target_info");
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

    [GeneratedRegex("^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\\{(?<labels>[^}]*)\\} (?<value>\\S+)", RegexOptions.Multiline)]
    private static partial Regex Sample();
}
