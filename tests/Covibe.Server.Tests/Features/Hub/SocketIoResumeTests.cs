using System.Net;
using System.Net.Http.Json;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// A Socket.IO client loses nothing of an agent's output across a dropped network and a server killed (-9) and started
/// again: it reconnects by itself, subscribes from the last <c>next</c> it saw (docs/protocol.md), and what it collects is
/// the agent's log, byte for byte.
/// </summary>
public sealed class SocketIoResumeTests
{
    private static Dictionary<string, string> Settings()
    {
        var settings = AgentHelpers.Settings();
        // Output for a few seconds, a line every 20 ms: enough to cut in the middle of.
        AgentHelpers.AddType(settings, "drip", ["sh", "-c", "i=0; while [ $i -lt 200 ]; do i=$((i+1)); printf 'drip %s of 200 ..................................................\\n' $i; sleep 0.02; done"]);
        return settings;
    }

    private static object Options(string token) => new
    {
        auth = new { token, followAgents = false },
        reconnectionDelay = 100,
        reconnectionDelayMax = 500,
    };

    [Fact]
    public async Task ANetworkCut_InTheMiddleOfAnAgentsOutput_LosesNothingAndRepeatsNothing()
    {
        await using var server = await TestServer.StartAsync(settings: Settings());
        var sarah = await server.CreateTeamAsync();
        await using var proxy = new TcpProxy(server.Url.Port);
        await using var client = await SocketIoClient.NodeAsync(proxy.Url, Options(sarah.Auth.AccessToken));
        await client.EventAsync("team_joined");
        var agent = await server.SpawnAsync(sarah.Auth.AccessToken, "drip", "drip");

        var output = await CollectResumingAsync(client, agent.Id, cutAfter: 2000, cut: () =>
        {
            proxy.DropAll();
            return Task.CompletedTask;
        });

        output.Cuts.ShouldBe(1);
        output.Bytes.ShouldBe(AgentHelpers.LogOf(server, agent.Id));
    }

    [Fact]
    public async Task AServerKilledAndStartedAgain_InTheMiddleOfAnAgentsOutput_LosesNothingAndRepeatsNothing()
    {
        var node = await ClusterNode.StartAsync("solo", "", Settings());
        await using var _ = node;
        using var http = new HttpClient { BaseAddress = node.Url, Timeout = TimeSpan.FromSeconds(60) };
        var created = await AgentMergeTests.OkAsync<CreateTeamResponse>(await http.PostAsJsonAsync("/api/team/create",
            new CreateTeamRequest("Killed", "Sarah", $"sarah{Guid.NewGuid():N}@example.com", TestServer.Password)), HttpStatusCode.Created);
        http.DefaultRequestHeaders.Authorization = new("Bearer", created.Auth.AccessToken);
        await using var client = await SocketIoClient.NodeAsync(node.Url, Options(created.Auth.AccessToken));
        await client.EventAsync("team_joined");
        var agent = await AgentMergeTests.OkAsync<AgentDto>(await http.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("drip", "drip")), HttpStatusCode.Created);

        var output = await CollectResumingAsync(client, agent.Id, cutAfter: 2000, cut: async () =>
        {
            await node.KillAsync();
            await node.StartAsync();
        });

        output.Cuts.ShouldBe(1);
        output.Bytes.ShouldBe(await File.ReadAllBytesAsync(Path.Combine(node.DataDirectory, "agents", agent.Id, "output.log")));
    }

    /// <summary>
    /// What a client of docs/protocol.md does: subscribes from 0, remembers each <c>next</c>, and after every reconnect
    /// subscribes again from it. <paramref name="cut"/> runs once <paramref name="cutAfter"/> bytes have arrived.
    /// </summary>
    private static async Task<(byte[] Bytes, int Cuts)> CollectResumingAsync(SocketIoClient client, string agentId, int cutAfter, Func<Task> cut)
    {
        var all = new MemoryStream();
        long expected = 0;
        var cuts = 0;
        // The first connection's connect is heard already (before team_joined): only later ones mean "connected again"
        // (taking the first for one subscribed again from 0 while output from 0 was on its way, and failed now and then).
        await client.NextAsync("connect");
        await client.SendAsync("agent_subscribe", new { agentId, from = 0 });
        while (true)
        {
            var line = await client.NextAsync(l => l.GetProperty("kind").GetString() == "connect"
                || l.GetProperty("kind").GetString() == "event" && l.GetProperty("event").GetString() is "agent_output" or "agent_output_end"
                   && l.GetProperty("data").GetProperty("agentId").GetString() == agentId, $"output of {agentId}", TimeSpan.FromSeconds(60));
            if (line.GetProperty("kind").GetString() == "connect")
            {
                // Connected again (the auth joins at once): on from the last position seen.
                await client.SendAsync("agent_subscribe", new { agentId, from = expected });
                continue;
            }
            var data = line.GetProperty("data");
            if (line.GetProperty("event").GetString() == "agent_output_end")
            {
                data.GetProperty("next").GetInt64().ShouldBe(expected);
                return (all.ToArray(), cuts);
            }
            data.GetProperty("position").GetInt64().ShouldBe(expected, "no gap, no overlap");
            var bytes = AgentHelpers.Decode(data);
            all.Write(bytes);
            expected += bytes.Length;
            if (cuts == 0 && all.Length >= cutAfter)
            {
                cuts++;
                await cut();
                await client.NextAsync("disconnect", TimeSpan.FromSeconds(30));
            }
        }
    }
}
