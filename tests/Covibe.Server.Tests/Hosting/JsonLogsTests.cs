using System.Net.Http.Json;
using System.Text.Json;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// <c>covibe serve --log-format json</c> (issue 29): standard output is one JSON object a line, a request's lines carry its
/// trace and span and the node, an agent's lines its id, and no secret is in any line.
/// </summary>
public sealed class JsonLogsTests : IDisposable
{
    private readonly string _data = StartupTests.TempDirectory();

    public void Dispose() => StartupTests.Delete(_data);

    [Fact]
    public async Task JsonLogs_AreOneObjectALine_WithTraceSpanAndNode_TheAgentsId_AndNoSecret()
    {
        var port = PostgresServer.FreePort();
        var url = $"http://127.0.0.1:{port}";
        var metricsToken = "metrics-token-" + Guid.NewGuid().ToString("N");
        var cli = new CliRunner(Path.Combine(_data, "cli"));
        using var server = cli.Start(
            ["serve", "--data", _data, "--urls", url, "--log-format", "json", "--Covibe:Teams:Signup=open", "--Covibe:Auth:PasswordIterations=100000"],
            environment: new Dictionary<string, string?>
            {
                ["JWT_SECRET"] = TestServer.JwtSecret,
                ["ENCRYPTION_KEY"] = TestServer.EncryptionKey,
                ["USE_MOCK_AGENTS"] = "true",
                ["COVIBE_METRICS_TOKEN"] = metricsToken,
            });
        var stdout = new List<string>();
        var stderr = new System.Text.StringBuilder();
        server.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (stdout) { stdout.Add(e.Data); } } };
        server.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (stderr) { stderr.AppendLine(e.Data); } } };
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();
        string[] secrets;
        string agentId;
        try
        {
            await AgentRestartTests.WaitHealthyAsync(url);
            using var http = new HttpClient { BaseAddress = new Uri(url) };
            var created = (await (await http.PostAsJsonAsync("/api/team/create", new CreateTeamRequest("Logs", "Kim", "kim@example.com", TestServer.Password))).Content.ReadFromJsonAsync<CreateTeamResponse>())!;
            // A wrong password and a wrong token are logged as refusals: what was presented must not be.
            (await http.PostAsJsonAsync("/api/auth/login", new LoginRequest("kim@example.com", "not-the-password-at-all"))).IsSuccessStatusCode.ShouldBeFalse();
            using (var forged = new HttpRequestMessage(HttpMethod.Get, "/api/agent/list") { Headers = { Authorization = new("Bearer", created.Auth.AccessToken + "x") } })
            {
                (await http.SendAsync(forged)).IsSuccessStatusCode.ShouldBeFalse();
            }
            using (var scrape = new HttpRequestMessage(HttpMethod.Get, "/metrics") { Headers = { Authorization = new("Bearer", metricsToken + "x") } })
            {
                (await http.SendAsync(scrape)).IsSuccessStatusCode.ShouldBeFalse();
            }
            http.DefaultRequestHeaders.Authorization = new("Bearer", created.Auth.AccessToken);
            var agent = (await (await http.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("write a haiku", "mock"))).Content.ReadFromJsonAsync<AgentDto>())!;
            agentId = agent.Id;
            await Eventually.UntilAsync(async () => (await http.GetFromJsonAsync<AgentDto>($"/api/agent/{agentId}"))!.Status, s => AgentStatuses.IsFinal(s), "the agent ended");
            await Eventually.UntilAsync(() => Task.FromResult(Lines(stdout).Any(l => l.Contains("\"AgentId\":\"" + agentId, StringComparison.Ordinal) && l.Contains("finished", StringComparison.OrdinalIgnoreCase))),
                "the agent's end logged");
            secrets = [TestServer.JwtSecret, TestServer.EncryptionKey, TestServer.Password, "not-the-password-at-all", created.Auth.AccessToken, created.Auth.RefreshToken, created.Invite.InviteCode, metricsToken];
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
        }

        var lines = Lines(stdout);
        lines.Count.ShouldBeGreaterThan(3);
        var logs = lines.Select(line =>
        {
            var json = Should.NotThrow(() => JsonDocument.Parse(line), $"not a JSON line: {line}").RootElement;
            json.TryGetProperty("Timestamp", out _).ShouldBeTrue(line);
            json.TryGetProperty("LogLevel", out _).ShouldBeTrue(line);
            json.TryGetProperty("Category", out _).ShouldBeTrue(line);
            return json;
        }).ToList();
        // The spawn is logged inside its request: its trace, its span and the node.
        var spawned = logs.Single(l => l.GetProperty("State").TryGetProperty("AgentId", out var id) && id.GetString() == agentId && l.GetProperty("Message").GetString()!.Contains("spawned", StringComparison.Ordinal));
        var scopes = spawned.GetProperty("Scopes").EnumerateArray().ToList();
        scopes.Any(s => s.TryGetProperty("TraceId", out var t) && t.GetString()!.Length == 32).ShouldBeTrue(spawned.ToString());
        scopes.Any(s => s.TryGetProperty("SpanId", out var t) && t.GetString()!.Length == 16).ShouldBeTrue(spawned.ToString());
        scopes.Any(s => s.TryGetProperty("Node", out _)).ShouldBeTrue(spawned.ToString());
        // Its end, logged by the node that followed it (no request under way): the agent and the node.
        var finished = logs.First(l => l.GetProperty("State").TryGetProperty("AgentId", out var id) && id.GetString() == agentId && !l.Equals(spawned)
            && l.GetProperty("Message").GetString()!.Contains("finished", StringComparison.OrdinalIgnoreCase));
        finished.GetProperty("Scopes").EnumerateArray().Any(s => s.TryGetProperty("Node", out _)).ShouldBeTrue(finished.ToString());

        var everything = string.Join('\n', lines) + stderr;
        foreach (var secret in secrets)
        {
            everything.ShouldNotContain(secret);
        }
        // The banner (plain text) went to standard error, leaving standard output to JSON.
        stderr.ToString().ShouldContain("is running");
    }

    private static List<string> Lines(List<string> stdout)
    {
        lock (stdout)
        {
            return [.. stdout.Where(l => l.Length > 0)];
        }
    }
}
