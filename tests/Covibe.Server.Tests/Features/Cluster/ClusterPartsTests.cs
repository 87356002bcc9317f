using System.Text;
using Covibe.Server.Features.Cluster;
using Covibe.Server.Features.Hub;
using Covibe.Server.Features.Agents;
using Covibe.Server.Http;
using Microsoft.Extensions.Configuration;

namespace Covibe.Server.Tests;

/// <summary>The small pure pieces of running several nodes: the team-event envelope, relayed output and calls between nodes on Redis, and REDIS_URL.</summary>
public sealed class ClusterPartsTests
{
    [Fact]
    public void AnEventForEveryone_CarriesItsFrameOnce_AndRoundTrips()
    {
        var frame = Encoding.UTF8.GetBytes("{\"type\":\"chat_message\",\"message\":\"" + new string('x', 10_000) + "\"}");
        var bytes = TeamEventCodec.Encode(new TeamEventEnvelope("node-1", "team-1", [], frame, frame));
        bytes.Length.ShouldBeLessThan(frame.Length * 2);
        var back = TeamEventCodec.Decode(bytes)!;
        (back.Node, back.TeamId).ShouldBe(("node-1", "team-1"));
        back.Who.ShouldBeEmpty();
        back.ForThem.ShouldBe(frame);
        back.ForOthers.ShouldBe(frame);
    }

    [Fact]
    public void AnEventWithAVariantForItsControllers_KeepsBothAndWhoGetsWhich()
    {
        var back = TeamEventCodec.Decode(TeamEventCodec.Encode(new TeamEventEnvelope("n", "t", ["owner-1", "bob-2"], [1, 2, 3], [4, 5])))!;
        back.Who.ShouldBe(["owner-1", "bob-2"]);
        back.ForThem.ShouldBe(new byte[] { 1, 2, 3 });
        back.ForOthers.ShouldBe(new byte[] { 4, 5 });
    }

    [Fact]
    public void BytesThatAreNoEnvelope_AreNone()
    {
        var good = TeamEventCodec.Encode(new TeamEventEnvelope("n", "t", ["o"], [1, 2, 3], [4, 5]));
        for (var cut = 0; cut < good.Length; cut++)
        {
            TeamEventCodec.Decode(good.AsSpan(0, cut)).ShouldBeNull($"cut at {cut}");
        }
        TeamEventCodec.Decode([.. good, 0]).ShouldBeNull("trailing bytes");
        var otherVersion = (byte[])good.Clone();
        otherVersion[0] = 2;
        TeamEventCodec.Decode(otherVersion).ShouldBeNull();
    }

    [Theory]
    [InlineData("redis://127.0.0.1:6380", "127.0.0.1:6380", null, null, -1, false)]
    [InlineData("redis://cache.internal", "cache.internal:6379", null, null, -1, false)]
    [InlineData("redis://:s3cr%40t@cache:7000/2", "cache:7000", null, "s3cr@t", 2, false)]
    [InlineData("redis://app:pw@cache", "cache:6379", "app", "pw", -1, false)]
    [InlineData("rediss://cache:6380", "cache:6380", null, null, -1, true)]
    public void RedisUrl_BecomesClientOptions(string url, string endpoint, string? user, string? password, int database, bool tls)
    {
        var options = RedisUrl.Parse(url);
        options.EndPoints.Single().ToString()!.ShouldEndWith(endpoint.Split(':')[1]);
        options.EndPoints.Single().ToString()!.ShouldContain(endpoint.Split(':')[0]);
        (options.User, options.Password, options.DefaultDatabase ?? -1, options.Ssl, options.AbortOnConnectFail).ShouldBe((user, password, database, tls, false));
    }

    [Theory]
    [InlineData("localhost:6379")]
    [InlineData("http://cache:6379")]
    [InlineData("redis://cache/abc")]
    [InlineData("")]
    public void ABadRedisUrl_IsAClearError(string url) =>
        Should.Throw<FormatException>(() => RedisUrl.Parse(url)).Message.ShouldContain("redis");

    [Fact]
    public void ANodesPresence_RoundTrips_AndGarbageIsNone()
    {
        var presence = new NodePresence("n1", "t1", new Dictionary<string, (string, int)> { ["u1"] = ("online", 2), ["u2"] = ("away", 1) });
        var back = NodePresenceCodec.Decode(NodePresenceCodec.Encode(presence))!;
        (back.Node, back.TeamId).ShouldBe(("n1", "t1"));
        back.Members.ShouldBe(presence.Members, ignoreOrder: true);
        NodePresenceCodec.Decode(NodePresenceCodec.Encode(presence with { Members = new Dictionary<string, (string, int)>() }))!.Members.ShouldBeEmpty();
        NodePresenceCodec.Decode("n1\tt1\nu1\tbusy\t1").ShouldBeNull();
        NodePresenceCodec.Decode("n1\tt1\nu1\tonline\t-1").ShouldBeNull();
        NodePresenceCodec.Decode("n1").ShouldBeNull();
        NodePresenceCodec.Decode(null).ShouldBeNull();
    }

    [Fact]
    public void APersonOnTwoNodes_IsOnlineIfOnlineOnEither_WithTheirConnectionsAddedUp()
    {
        var here = new Dictionary<string, (string Status, int Connections)> { ["a"] = ("away", 1), ["b"] = ("online", 1) };
        var elsewhere = new Dictionary<string, (string Status, int Connections)> { ["a"] = ("online", 2), ["c"] = ("away", 1) };
        var merged = Covibe.Server.Features.Hub.ClusterPresence.Merge(here, elsewhere);
        merged["a"].ShouldBe(("online", 3));
        merged["b"].ShouldBe(("online", 1));
        merged["c"].ShouldBe(("away", 1));
        Covibe.Server.Features.Hub.ClusterPresence.Merge(here, new Dictionary<string, (string, int)>()).ShouldBeSameAs(here);
    }

    [Fact]
    public void RelayedOutput_RoundTripsWithItsPosition_AndAnEndCarriesTheStatus()
    {
        byte[] data = [0, 1, 2, 0xff, (byte)'\n'];
        var back = RelayedOutputCodec.Decode(RelayedOutputCodec.Encode(new RelayedOutput("n1", "agent-1", "team-1", "owner-1", "local", 5_000_000_000, data)))!;
        back.ShouldBeEquivalentTo(back with { Node = "n1", AgentId = "agent-1", TeamId = "team-1", OwnerId = "owner-1", Backend = "local", Position = 5_000_000_000, FinalStatus = null });
        back.Data.ShouldBe(data);
        var end = RelayedOutputCodec.Decode(RelayedOutputCodec.Encode(new RelayedOutput("n1", "agent-1", "team-1", "owner-1", "ssh", 42, [], "killed")))!;
        (end.FinalStatus, end.Position, end.Data.Length).ShouldBe(("killed", 42L, 0));
    }

    [Fact]
    public void BytesThatAreNoRelayedOutput_AreNone()
    {
        var good = RelayedOutputCodec.Encode(new RelayedOutput("n", "a", "t", "o", "local", 7, [1, 2]));
        // Cut anywhere before the data starts (the data is the rest, so any length of it is well formed).
        for (var cut = 0; cut < good.Length - 2; cut++)
        {
            RelayedOutputCodec.Decode(good.AsSpan(0, cut)).ShouldBeNull($"cut at {cut}");
        }
        RelayedOutputCodec.Decode(RelayedOutputCodec.Encode(new RelayedOutput("n", "a", "t", "o", "local", -1, [1]))).ShouldBeNull("a negative position");
        RelayedOutputCodec.Decode(RelayedOutputCodec.Encode(new RelayedOutput("n", "", "t", "o", "local", 0, [1]))).ShouldBeNull("no agent");
    }

    [Fact]
    public void ACallBetweenNodes_RoundTrips_WithTextThatHasNewlines_AndGarbageIsNone()
    {
        var call = new NodeCall("id-1", "node-a", IsReply: false, ["user", "team", "session", "Sarah", "agent", "input", "two\nlines\u00e9"]);
        var back = NodeCallCodec.Decode(NodeCallCodec.Encode(call))!;
        (back.Id, back.From, back.IsReply).ShouldBe(("id-1", "node-a", false));
        back.Fields.ShouldBe(call.Fields);
        NodeCallCodec.Decode(NodeCallCodec.Encode(new NodeCall("id-1", "node-b", true, ["None", ""])))!.IsReply.ShouldBeTrue();
        var good = NodeCallCodec.Encode(call);
        for (var cut = 0; cut < good.Length; cut++)
        {
            NodeCallCodec.Decode(good.AsSpan(0, cut)).ShouldBeNull($"cut at {cut}");
        }
        NodeCallCodec.Decode([.. good, 0]).ShouldBeNull("trailing bytes");
    }

    private sealed class Listening(params string[] addresses) : Microsoft.AspNetCore.Hosting.Server.IServer
    {
        public Microsoft.AspNetCore.Http.Features.IFeatureCollection Features { get; } = Collection(addresses);

        private static Microsoft.AspNetCore.Http.Features.FeatureCollection Collection(string[] addresses)
        {
            var features = new Microsoft.AspNetCore.Http.Features.FeatureCollection();
            var feature = new Microsoft.AspNetCore.Hosting.Server.Features.ServerAddressesFeature();
            foreach (var address in addresses)
            {
                feature.Addresses.Add(address);
            }
            features.Set<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>(feature);
            return features;
        }

        public Task StartAsync<TContext>(Microsoft.AspNetCore.Hosting.Server.IHttpApplication<TContext> application, CancellationToken cancellationToken) where TContext : notnull =>
            Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public void Dispose()
        {
        }
    }

    private static string NodeUrlOf(string? configured, params string[] listening) =>
        new NodeUrl(Microsoft.Extensions.Options.Options.Create(new ClusterOptions { NodeUrl = configured }), new Listening(listening)).Value;

    [Fact]
    public void ANodesAddress_IsNodeUrl_ElseWhereItListens_ElseThisMachinesAddress()
    {
        NodeUrlOf("http://10.0.0.11:5180/", "http://127.0.0.1:5180").ShouldBe("http://10.0.0.11:5180");
        NodeUrlOf(null, "http://127.0.0.1:41234").ShouldBe("http://127.0.0.1:41234");
        // Listening on every address: the machine's own address (not a wildcard another node cannot dial).
        foreach (var wildcard in new[] { "http://0.0.0.0:5180", "http://[::]:5180", "http://*:5180", "http://+:5180" })
        {
            var url = new Uri(NodeUrlOf(null, wildcard));
            url.Port.ShouldBe(5180);
            url.Host.ShouldNotBeOneOf("0.0.0.0", "[::]", "*", "+");
            System.Net.IPAddress.TryParse(url.Host.Trim('[', ']'), out _).ShouldBeTrue(wildcard);
        }
    }

    [Fact]
    public void TheNodesAddress_IsANameTheNodeAnswersTo()
    {
        IConfiguration Config(Dictionary<string, string?> values) => new ConfigurationBuilder().AddInMemoryCollection(values).Build();
        var allowed = Covibe.Server.Http.AllowedHosts.From(Config(new() { ["Covibe:AllowedHosts"] = "covibe.example.com", ["Covibe:Cluster:NodeUrl"] = "http://10.0.0.11:5180" }))!;
        allowed.ShouldContain("covibe.example.com");
        allowed.ShouldContain("10.0.0.11");
        allowed.ShouldNotContain("10.0.0.12");
        Covibe.Server.Http.AllowedHosts.From(Config(new() { ["urls"] = "http://127.0.0.1:5180", ["Covibe:Cluster:NodeUrl"] = "http://node-a.internal:5180" }))!
            .ShouldContain("node-a.internal");
    }
}
