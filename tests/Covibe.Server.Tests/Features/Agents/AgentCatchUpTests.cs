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

        // A teammate's screen subscribes from the start: it reads each block of the log once, in order.
        var first = await server.ConnectAsync(owner.Auth.AccessToken); // disposed below: the test watches what that does
        await first.ReceiveAsync("team_joined");
        await first.SendAsync(new { type = "agent_subscribe", agentId = agent.Id, from = 0 });
        var (bytes, positions) = await CollectTextAsync(first, agent.Id, 0, log.Length);
        bytes.ShouldBe(log);
        var blocks = (int)(feed.RingStart / LogBlocks.Size);
        feed.Blocks.Reads.ShouldBeInRange(blocks - 1, blocks + 1);

        // Another catches up through the last blocks the first one read (a resume from a frame it saw at a block's
        // start): it shares them, reading nothing from the log, and gets the same bytes.
        var from = positions.Last(p => LogBlocks.BlockAt(p) is var k and > 0 && k <= blocks - 8);
        var reads = feed.Blocks.Reads;
        var second = await server.ConnectAsync(owner.Auth.AccessToken);
        await second.ReceiveAsync("team_joined");
        await second.SendAsync(new { type = "agent_subscribe", agentId = agent.Id, from });
        (await CollectTextAsync(second, agent.Id, from, log.Length)).Bytes.ShouldBe(log[(int)from..]);
        feed.Blocks.Reads.ShouldBe(reads, "the blocks were read once, for both");

        // The feed counts both subscriptions (its gathering window is sized on them), and neither once they are gone.
        feed.Watchers.ShouldBe(2);
        await first.DisposeAsync();
        await second.DisposeAsync();
        await Eventually.UntilAsync(() => Task.FromResult(feed.Watchers), n => n == 0, "the subscriptions are let go", TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task WatchersReplayingAFinishedAgent_ShareBlocksOfItsLog()
    {
        // An agent that has ended has no feed here: a crowd replaying it (or still catching up when it ended) shares
        // each block of its log all the same, instead of each reading and framing its own.
        var settings = AgentHelpers.Settings();
        AgentHelpers.AddType(settings, "text", ["sh", "-c", "yes '{\"type\":\"assistant\",\"text\":\"héllo 漢字 🎉 a line of stream-json\"}' | head -n 20000"]);
        await using var server = await TestServer.StartAsync(settings: settings);
        var owner = await server.CreateTeamAsync();
        var agent = await server.SpawnAsync(owner.Auth.AccessToken, "text", "text");
        await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id);
        var feeds = server.App.Services.GetRequiredService<AgentFeeds>();
        await Eventually.UntilAsync(() => Task.FromResult(feeds.Get(agent.Id) is null), "the finished agent's feed is closed");
        var log = AgentHelpers.LogOf(server, agent.Id);

        var first = await server.ConnectAsync(owner.Auth.AccessToken);
        await first.ReceiveAsync("team_joined");
        await first.SendAsync(new { type = "agent_subscribe", agentId = agent.Id, from = 0 });
        (await CollectTextAsync(first, agent.Id, 0, log.Length)).Bytes.ShouldBe(log);
        var blocks = log.Length / LogBlocks.Size;
        feeds.ReplayOf(agent.Id).Reads.ShouldBeInRange(blocks - 1, blocks + 1, "each whole block read once");

        // A second replay of its last blocks (from where the fourth last starts, at a character) reads none of them again.
        var reads = feeds.ReplayOf(agent.Id).Reads;
        var from = (long)(blocks - 4) * LogBlocks.Size;
        from -= 3 - log.AsSpan((int)from - 3, 4).LastIndexOfAnyExcept(Enumerable.Range(0x80, 0x40).Select(b => (byte)b).ToArray());
        var second = await server.ConnectAsync(owner.Auth.AccessToken);
        await second.ReceiveAsync("team_joined");
        await second.SendAsync(new { type = "agent_subscribe", agentId = agent.Id, from });
        (await CollectTextAsync(second, agent.Id, from, log.Length)).Bytes.ShouldBe(log[(int)from..]);
        feeds.ReplayOf(agent.Id).Reads.ShouldBe(reads, "the blocks were read once, for both");
        await first.DisposeAsync();
        await second.DisposeAsync();
    }

    /// <summary>Output from <paramref name="from"/> until <paramref name="length"/>: contiguous, every frame text (no base64), as the log is text; and where each frame started.</summary>
    private static async Task<(byte[] Bytes, List<long> Positions)> CollectTextAsync(HubClient hub, string agentId, long from, long length)
    {
        var all = new MemoryStream();
        var positions = new List<long>();
        while (from + all.Length < length)
        {
            var m = await hub.ReceiveAsync(e => e.GetProperty("type").GetString() == "agent_output" && e.GetProperty("agentId").GetString() == agentId,
                TimeSpan.FromSeconds(30), "output");
            var position = m.GetProperty("position").GetInt64();
            position.ShouldBe(from + all.Length, "no gap, no overlap");
            m.TryGetProperty("encoding", out _).ShouldBeFalse($"text at {position} is sent as text, never cut inside a character");
            positions.Add(position);
            all.Write(Encoding.UTF8.GetBytes(m.GetProperty("data").GetString()!));
        }
        return (all.ToArray(), positions);
    }
}
