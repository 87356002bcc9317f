using System.Text;
using Covibe.Server.Features.Agents;
using Covibe.Server.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Covibe.Server.Tests;

/// <summary>Watchers that are behind what the server holds in memory catch up from the agent's log, sharing what they read.</summary>
public sealed class AgentCatchUpTests
{
    [Fact]
    public async Task WatchersBehindTheRing_ShareBlocksOfTheLog_AndGetEveryByte_AsText()
    {
        var settings = AgentHelpers.Settings();
        settings["Covibe:Agents:RingBytes"] = "65536";
        // About 2 MB of text with 2-, 3- and 4-byte characters (block starts fall inside some), then the agent waits: its
        // feed stays open while the watchers catch up.
        AgentHelpers.AddType(settings, "text", ["sh", "-c",
            "yes '{\"type\":\"assistant\",\"text\":\"héllo 漢字 🎉 a line of stream-json\"}' | head -n 40000; printf 'written\\n'; read -r line"]);
        await using var server = await TestServer.StartAsync(settings: settings);
        var owner = await server.CreateTeamAsync();
        var agent = await server.SpawnAsync(owner.Auth.AccessToken, "text", "text");
        var log = await Eventually.UntilAsync(() => Task.FromResult(File.Exists(Path.Combine(server.DataDirectory, "agents", agent.Id, "output.log")) ? AgentHelpers.LogOf(server, agent.Id) : []),
            l => l.AsSpan().EndsWith("written\n"u8), "the agent wrote its output", TimeSpan.FromSeconds(30));
        var feed = server.App.Services.GetRequiredService<AgentFeeds>().Get(agent.Id)!;
        await Eventually.UntilAsync(() => Task.FromResult(feed.Position), p => p == log.Length, "the server read it all", TimeSpan.FromSeconds(30));
        feed.RingStart.ShouldBeGreaterThan(log.Length - 128 * 1024, "most of it is older than the ring: only the log has it");

        // Three teammates' screens subscribe from the start at once.
        var watchers = new List<HubClient>();
        for (var i = 0; i < 3; i++)
        {
            var watcher = await server.ConnectAsync(owner.Auth.AccessToken);
            await watcher.ReceiveAsync("team_joined");
            watchers.Add(watcher);
        }
        try
        {
            await Task.WhenAll(watchers.Select(w => w.SendAsync(new { type = "agent_subscribe", agentId = agent.Id, from = 0 })));
            var seen = await Task.WhenAll(watchers.Select(w => CollectTextAsync(w, agent.Id, log.Length)));
            foreach (var bytes in seen)
            {
                bytes.ShouldBe(log);
            }
            // Each block of the log was read about once for the three of them (a watcher never reading a block on its own,
            // or each reading its own, would make this 0 or three times as many).
            var blocks = (int)(feed.RingStart / LogBlocks.Size);
            feed.Blocks.Reads.ShouldBeInRange(blocks - 1, blocks + 3);
        }
        finally
        {
            foreach (var watcher in watchers)
            {
                await watcher.DisposeAsync();
            }
        }
    }

    /// <summary>Output until <paramref name="length"/>: contiguous, and every frame text (no base64), as the log is text.</summary>
    private static async Task<byte[]> CollectTextAsync(HubClient hub, string agentId, long length)
    {
        var all = new MemoryStream();
        while (all.Length < length)
        {
            var m = await hub.ReceiveAsync(e => e.GetProperty("type").GetString() == "agent_output" && e.GetProperty("agentId").GetString() == agentId,
                TimeSpan.FromSeconds(30), "output");
            m.GetProperty("position").GetInt64().ShouldBe(all.Length, "no gap, no overlap");
            m.TryGetProperty("encoding", out _).ShouldBeFalse($"text at {all.Length} is sent as text, never cut inside a character");
            all.Write(Encoding.UTF8.GetBytes(m.GetProperty("data").GetString()!));
        }
        return all.ToArray();
    }
}
