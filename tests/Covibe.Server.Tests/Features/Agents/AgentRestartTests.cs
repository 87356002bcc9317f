using System.Diagnostics;
using System.Net.Http.Json;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;
using Microsoft.Data.Sqlite;

namespace Covibe.Server.Tests;

/// <summary>Agents outlive the server; a client resumes from its last position with no gap and no duplicate.</summary>
public sealed class AgentRestartTests : IDisposable
{
    private readonly string _data = StartupTests.TempDirectory();

    [Fact]
    public async Task ServerRestart_AgentKeepsRunning_AndTheClientResumesExactly()
    {
        // About 15 s of output: a stop and a start of the server fit inside it even on a busy machine (with 6 s, a full
        // run once found the agent completed by the time the second server answered).
        var settings = AgentHelpers.Settings(mockDelayMs: 100, mockSteps: 150);
        byte[] before;
        long next;
        string agentId, token;
        int pid;
        await using (var first = await TestServer.StartAsync(settings: settings, dataDirectory: _data))
        {
            var owner = await first.CreateTeamAsync();
            token = owner.Auth.AccessToken;
            var agent = await first.SpawnAsync(token, "Survive a restart");
            agentId = agent.Id;
            await using var hub = await first.ConnectAsync(token);
            await hub.ReceiveAsync("team_joined");
            await hub.SendAsync(new { type = "agent_subscribe", agentId, from = 0 });
            (before, next) = await ReadSomeAsync(hub, agentId, minimum: 1500);
            pid = PidOf(agentId);
        }

        ProcessAlive(pid).ShouldBeTrue("the agent outlives the server");
        await using var second = await TestServer.StartAsync(settings: settings, dataDirectory: _data);
        (await second.GetAgentAsync(token, agentId)).Status.ShouldBe("running");
        PidOf(agentId).ShouldBe(pid);
        await using var again = await second.ConnectAsync(token);
        await again.ReceiveAsync("team_joined");
        await again.SendAsync(new { type = "agent_subscribe", agentId, from = next });
        var (rest, _, status) = await again.CollectOutputAsync(agentId, from: next);
        status.ShouldBe("completed");
        before.Concat(rest).ToArray().ShouldBe(AgentHelpers.LogOf(second, agentId));
    }

    [Fact]
    public async Task AConversationWaitingForInput_IsFollowedAgainAfterARestart()
    {
        var settings = AgentHelpers.Settings();
        settings["Covibe:Agents:Types:claude-chat:Environment:PATH"] = $"{ClaudeServerFixture.FakeDirectory}:{Environment.GetEnvironmentVariable("PATH")}";
        ClaudeServerFixture.Bypass(settings);
        string agentId, token;
        await using (var first = await TestServer.StartAsync(settings: settings, dataDirectory: _data))
        {
            token = (await first.CreateTeamAsync()).Auth.AccessToken;
            agentId = (await first.SpawnAsync(token, "First question", "claude-chat")).Id;
            await Eventually.UntilAsync(() => first.GetAgentAsync(token, agentId), a => a.Status == "waiting", "the first turn ends");
        }

        // The restarted server follows the waiting agent at once (nothing else would make it look again): it sees the
        // conversation end when the owner ends it, with everything it wrote.
        await using var second = await TestServer.StartAsync(settings: settings, dataDirectory: _data);
        using var client = second.Client(token);
        (await client.PostAsync($"/api/agent/{agentId}/end", null)).StatusCode.ShouldBe(System.Net.HttpStatusCode.Accepted);
        var done = await second.WaitFinishedAsync(token, agentId, TimeSpan.FromSeconds(20));
        done.Status.ShouldBe("completed");
        done.CostUsd.ShouldNotBeNull();
        (await second.OutputAsync(token, agentId)).ShouldBe(AgentHelpers.LogOf(second, agentId));
    }

    [Fact]
    public async Task AgentFinishingWhileTheServerIsDown_IsRecordedWithItsWholeOutputOnRestart()
    {
        var settings = AgentHelpers.Settings(mockDelayMs: 50, mockSteps: 40);
        string agentId, token;
        await using (var first = await TestServer.StartAsync(settings: settings, dataDirectory: _data))
        {
            var owner = await first.CreateTeamAsync();
            token = owner.Auth.AccessToken;
            agentId = (await first.SpawnAsync(token, "Finish alone")).Id;
            // Stopped once its process runs: stopped while it was still being started, it would never run at all.
            await Eventually.UntilAsync(() => first.GetAgentAsync(token, agentId), a => a.Status != AgentStatuses.Starting, "the agent runs", TimeSpan.FromSeconds(60));
        }
        var exitFile = Path.Combine(_data, "agents", agentId, "exit");
        var watch = Stopwatch.StartNew();
        while (!File.Exists(exitFile))
        {
            watch.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(60), "the agent finishes on its own while no server runs (a loaded machine starts a sandbox slowly)");
            await Task.Delay(50);
        }

        await using var second = await TestServer.StartAsync(settings: settings, dataDirectory: _data);
        var done = await second.WaitFinishedAsync(token, agentId);
        done.Status.ShouldBe("completed");
        done.CostUsd.ShouldNotBeNull();
        (await second.OutputAsync(token, agentId)).ShouldBe(AgentHelpers.LogOf(second, agentId));
    }

    [Fact]
    public async Task ServerKilledWithSigkill_AgentIsTheSameProcessAfterRestart_AndNothingIsLostOrRepeated()
    {
        var pid = 0;
        await KilledAndRestartedAsync(_data, [], agentId =>
        {
            pid = PidOf(agentId);
            return Task.CompletedTask;
        }, agentId =>
        {
            ProcessAlive(pid).ShouldBeTrue("the agent outlives a killed server");
            return Task.CompletedTask;
        }, agentId =>
        {
            PidOf(agentId).ShouldBe(pid);
            return Task.CompletedTask;
        });
    }

    /// <summary>
    /// A real <c>covibe serve</c> (with <paramref name="extraArgs"/>) runs an agent that writes a line every 100 ms until the
    /// test lets it end (a file <c>release</c> in its working directory), so it still runs after the restart however busy
    /// the machine is; a client reads part of its output; the server is killed with SIGKILL (<paramref name="whileDown"/>
    /// runs then) and started again; the client resumes from where it was and the whole equals the agent's log.
    /// </summary>
    /// <summary>A line every 100 ms until a file <c>release</c> appears in its working directory; then it ends well.</summary>
    internal const string GatedAgent = "i=0; while [ ! -e release ]; do i=$((i+1)); echo \"line $i of an agent that outlives its server\"; sleep 0.1; done; echo released";

    internal static async Task KilledAndRestartedAsync(string data, string[] extraArgs,
        Func<string, Task> beforeKill, Func<string, Task> whileDown, Func<string, Task> afterRestart)
    {
        var port = PostgresServer.FreePort();
        var url = $"http://127.0.0.1:{port}";
        var cli = new CliRunner(Path.Combine(data, "cli"));
        string[] args = ["serve", "--dev", "--data", data, "--urls", url, "--Covibe:Auth:PasswordIterations=100000",
            "--Covibe:Agents:Types:gated:Command:0=sh", "--Covibe:Agents:Types:gated:Command:1=-c", $"--Covibe:Agents:Types:gated:Command:2={GatedAgent}", .. extraArgs];

        var server = cli.Start(args);
        string token, agentId;
        byte[] before;
        long next;
        try
        {
            await WaitHealthyAsync(url);
            var serverUri = new Uri(url);
            using var http = new HttpClient { BaseAddress = serverUri };
            var created = (await (await http.PostAsJsonAsync("/api/team/create", new CreateTeamRequest("K", "Kim", "kim@example.com", TestServer.Password))).Content.ReadFromJsonAsync<CreateTeamResponse>())!;
            token = created.Auth.AccessToken;
            http.DefaultRequestHeaders.Authorization = new("Bearer", token);
            var agent = (await (await http.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("Survive kill -9", "gated"))).Content.ReadFromJsonAsync<AgentDto>())!;
            agentId = agent.Id;
            await using var hub = await HubClient.ConnectAsync(serverUri, token);
            await hub.ReceiveAsync("team_joined");
            await hub.SendAsync(new { type = "agent_subscribe", agentId, from = 0 });
            (before, next) = await ReadSomeAsync(hub, agentId, minimum: 1500);
            await beforeKill(agentId);
        }
        finally
        {
            server.Kill(); // SIGKILL: no shutdown code runs
            await server.WaitForExitAsync();
        }

        await whileDown(agentId);
        using var restarted = cli.Start(args);
        try
        {
            await WaitHealthyAsync(url);
            var serverUri = new Uri(url);
            using var http = new HttpClient { BaseAddress = serverUri };
            http.DefaultRequestHeaders.Authorization = new("Bearer", token);
            (await http.GetFromJsonAsync<AgentDto>($"/api/agent/{agentId}"))!.Status.ShouldBe("running");
            await afterRestart(agentId);
            await using var hub = await HubClient.ConnectAsync(serverUri, token);
            await hub.ReceiveAsync("team_joined");
            await hub.SendAsync(new { type = "agent_subscribe", agentId, from = next });
            // Now it may end: the client follows it to its last byte.
            await File.WriteAllTextAsync(Path.Combine(Directory.EnumerateDirectories(Path.Combine(data, "workspaces"), agentId, SearchOption.AllDirectories).Single(), "release"), "");
            var (rest, _, status) = await hub.CollectOutputAsync(agentId, from: next);
            status.ShouldBe("completed");
            var log = await File.ReadAllBytesAsync(Path.Combine(data, "agents", agentId, "output.log"));
            before.Concat(rest).ToArray().ShouldBe(log);
        }
        finally
        {
            restarted.Kill();
            await restarted.WaitForExitAsync();
        }
    }

    internal static async Task<(byte[] Bytes, long Next)> ReadSomeAsync(HubClient hub, string agentId, int minimum)
    {
        var bytes = new MemoryStream();
        long next = 0;
        while (bytes.Length < minimum)
        {
            var m = await hub.ReceiveAsync(e => e.GetProperty("type").GetString() == "agent_output" && e.GetProperty("agentId").GetString() == agentId);
            m.GetProperty("position").GetInt64().ShouldBe(next);
            bytes.Write(AgentHelpers.Decode(m));
            next = m.GetProperty("next").GetInt64();
        }
        return (bytes.ToArray(), next);
    }

    private int PidOf(string agentId)
    {
        SqliteConnection.ClearAllPools();
        using var db = new SqliteConnection($"Data Source={Path.Combine(_data, "covibe.db")};Mode=ReadOnly");
        db.Open();
        using var command = db.CreateCommand();
        command.CommandText = "SELECT pid FROM agents WHERE id = $id";
        command.Parameters.AddWithValue("$id", agentId);
        return Convert.ToInt32(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static bool ProcessAlive(int pid) =>
        File.Exists($"/proc/{pid}/stat") && !File.ReadAllText($"/proc/{pid}/stat").Split(' ')[2].StartsWith('Z');

    internal static async Task WaitHealthyAsync(string url)
    {
        using var http = new HttpClient();
        var watch = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                if ((await http.GetAsync($"{url}/health")).IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            watch.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(60), "server did not start");
            await Task.Delay(100);
        }
    }

    public void Dispose() => StartupTests.Delete(_data);
}
