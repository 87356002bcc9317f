using System.Diagnostics;
using System.Net.Http.Json;
using Covibe.Protocol;
using Covibe.Server.Features.Machines;
using Covibe.Server.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Covibe.Server.Tests;

/// <summary>
/// Limits per team on the embedded default: one team's fork bomb and memory hog, in its own terminal on the sandbox, are
/// stopped by that team's limits (and the team is told), while another team's agent runs to completion and the server
/// answers its health check within a second throughout.
/// </summary>
[Collection(SerialGroup.Name)] // a fork bomb and a memory hog: alone, so that other tests' timings are not theirs
public sealed class TeamLimitsTests
{
    [Fact]
    public async Task OneTeamsForkBombAndMemoryHog_AreStoppedByItsLimits_WhileAnotherTeamsAgentRunsToCompletion_AndHealthAnswers()
    {
        if (Environment.UserName != "root")
        {
            return; // the per-team cgroups need root here; CI runs as root
        }
        await using var server = await TestServer.StartAsync(settings: new Dictionary<string, string>
        {
            ["Covibe:Isolation:TeamProcesses"] = "64",
            ["Covibe:Isolation:TeamMemoryMiB"] = "128",
            ["Covibe:Isolation:TeamCpus"] = "0.5",
        });
        var groups = server.App.Services.GetRequiredService<SandboxLimits>().Groups
            ?? throw new ShouldAssertException($"per-team limits hold on this machine: {server.App.Services.GetRequiredService<SandboxLimits>().Why}");
        var initech = await server.CreateTeamAsync("Initech", "Ann");
        var globex = await server.CreateTeamAsync("Globex", "Bob");
        await using var hub = await HubClient.ConnectAsync(server.Url, initech.Auth.AccessToken);
        await hub.JoinAsync(initech.Auth.Team.Id, initech.Auth.AccessToken);

        // Health, asked all along by someone outside the teams.
        using var watch = new CancellationTokenSource();
        var slowest = TimeSpan.Zero;
        var health = Task.Run(async () =>
        {
            using var http = new HttpClient { BaseAddress = server.Url, Timeout = TimeSpan.FromSeconds(5) };
            while (!watch.IsCancellationRequested)
            {
                var started = Stopwatch.GetTimestamp();
                (await http.GetAsync("/health")).EnsureSuccessStatusCode();
                var took = Stopwatch.GetElapsedTime(started);
                slowest = took > slowest ? took : slowest;
                await Task.Delay(200);
            }
        });

        await using var terminal = await TerminalClient.ConnectAsync(server.Url, "/terminal", initech.Auth.AccessToken);
        await terminal.ReceiveAsync("ready");
        // A memory hog (tail keeps a line with no end in memory): killed by the team's memory limit, and the team told why.
        await terminal.CreateAsync("hog", new { shell = "/bin/bash" });
        await terminal.CommandAsync("hog", "tail /dev/zero; echo hog-exit=$((0+$?))");
        await terminal.OutputUntilAsync("hog", "hog-exit=137", TimeSpan.FromSeconds(60));
        var told = await hub.ReceiveAsync(m => m.GetProperty("type").GetString() == "team_limit", TimeSpan.FromSeconds(10), "team_limit");
        told.GetProperty("limit").GetString().ShouldBe("memory");
        told.GetProperty("message").GetString()!.ShouldContain("128 MiB");

        // A fork bomb: held at the team's process limit.
        await terminal.CreateAsync("bomb", new { shell = "/bin/bash" });
        await terminal.CommandAsync("bomb", "bomb() { bomb | bomb & }; bomb");
        await Eventually.UntilAsync(() => Task.FromResult(groups.Events(initech.Auth.Team.Id).ForksRefused), refused => refused > 0, "the bomb reaches the limit");
        (await hub.ReceiveAsync(m => m.GetProperty("type").GetString() == "team_limit" && m.GetProperty("limit").GetString() == "processes", TimeSpan.FromSeconds(10), "team_limit processes"))
            .GetProperty("message").GetString()!.ShouldContain("64");

        // Meanwhile another team's agent starts, runs and finishes as usual.
        using var bob = server.Client(globex.Auth.AccessToken);
        var spawned = await bob.PostAsJsonAsync("/api/agents/spawn", new SpawnAgentRequest("while they bomb", "mock"));
        spawned.EnsureSuccessStatusCode();
        var agent = (await spawned.Content.ReadFromJsonAsync<SpawnAgentResponse>())!.Agent;
        (await server.WaitFinishedAsync(globex.Auth.AccessToken, agent.Id, TimeSpan.FromSeconds(60))).Status.ShouldBe("completed");

        await watch.CancelAsync();
        await health;
        slowest.ShouldBeLessThan(TimeSpan.FromSeconds(1), "the server answered its health check within a second throughout");
        // Closing the bomb's terminal ends every process of it.
        await terminal.SendAsync(new { type = "session", action = "close", id = "bomb" });
        await terminal.ReceiveAsync(m => TerminalClient.Is(m, "session", "closed"));
    }
}
