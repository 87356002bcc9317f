using Covibe.Server.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Covibe.Server.Tests;

/// <summary>
/// Terminals across nodes: a shell runs on the node where it was opened; a member connected to another node lists it,
/// watches it (a teammate, when shared) or uses it (its owner, whose page reconnected through the load balancer to the
/// other node), and the node holding it checks every message as if the client were its own.
/// </summary>
[Collection(RedisGroup.Name)]
public sealed class ClusterTerminalTests(PostgresServer postgres, RedisServer redis) : IClassFixture<PostgresServer>
{
    private static readonly object Sh = new { shell = "/bin/sh" };

    private async Task<(TestServer A, TestServer B)> StartNodesAsync(Dictionary<string, string>? extra = null)
    {
        var database = await postgres.CreateDatabaseAsync();
        var settings = redis.ClusterSettings();
        foreach (var (key, value) in extra ?? [])
        {
            settings[key] = value;
        }
        return (await TestServer.StartAsync(postgres: database, settings: settings), await TestServer.StartAsync(postgres: database, settings: settings));
    }

    private static async Task<TerminalClient> ConnectAsync(TestServer node, string token)
    {
        var client = await TerminalClient.ConnectAsync(node.Url, "/terminal", token);
        await client.ReceiveAsync("ready");
        return client;
    }

    /// <summary>The session ids <paramref name="client"/> is listed, once the list satisfies <paramref name="done"/>.</summary>
    private static Task<string[]> ListedAsync(TerminalClient client, Func<string[], bool> done, string what) =>
        Eventually.UntilAsync(async () =>
        {
            await client.SendAsync(new { type = "session", action = "list" });
            var list = await client.ReceiveAsync("sessions");
            return list.GetProperty("sessions").EnumerateArray().Select(s => s.GetProperty("id").GetString()!).ToArray();
        }, done, what);

    [Fact]
    public async Task ATerminalOpenedOnNodeA_IsWatchedFromNodeB_AndItsOwnerUsesItFromNodeB()
    {
        var (a, b) = await StartNodesAsync();
        await using var nodeA = a;
        await using var nodeB = b;
        var (owner, member) = await a.CreateTeamWithMemberAsync("Terminals team");
        var stranger = await a.CreateTeamAsync("Other team", "Chen");

        await using var sarahOnA = await ConnectAsync(a, owner.Auth.AccessToken);
        await sarahOnA.CreateAsync("on-a", Sh);
        await sarahOnA.CommandAsync("on-a", "echo started-on-a n=$((6*7))");
        await sarahOnA.OutputUntilAsync("on-a", "started-on-a n=42");
        await using var sarahPrivate = await ConnectAsync(a, owner.Auth.AccessToken);
        await sarahPrivate.CreateAsync("private-on-a", Sh);
        await sarahOnA.SendAsync(new { type = "session", action = "share", id = "on-a" });
        await sarahOnA.ReceiveAsync(m => TerminalClient.Is(m, "session", "shared"));

        // The teammate, on node B, sees the shared session in the list (not the unshared one) and watches it: what was
        // shown before they came, then live.
        await using var miguelOnB = await ConnectAsync(b, member.AccessToken);
        var listed = await ListedAsync(miguelOnB, ids => ids.Contains("on-a"), "node B lists the shared terminal on node A");
        listed.ShouldNotContain("private-on-a");
        await miguelOnB.SendAsync(new { type = "session", action = "attach", id = "on-a" });
        var attached = await miguelOnB.ReceiveAsync(m => TerminalClient.Is(m, "session", "attached"));
        attached.GetProperty("read_only").GetBoolean().ShouldBeTrue();
        attached.GetProperty("info").GetProperty("owner_name").GetString().ShouldBe("Sarah");
        await miguelOnB.OutputUntilAsync("on-a", "started-on-a n=42");
        await sarahOnA.CommandAsync("on-a", "echo live-from-a n=$((7*7))");
        await miguelOnB.OutputUntilAsync("on-a", "live-from-a n=49");

        // Watching is not typing: node A refuses it, and node B says so. The unshared one is not there for the teammate.
        await miguelOnB.InputAsync("on-a", "echo intruder\n");
        await miguelOnB.ErrorAsync("FORBIDDEN");
        await miguelOnB.SendAsync(new { type = "session", action = "attach", id = "private-on-a" });
        await miguelOnB.ErrorAsync("SESSION_NOT_FOUND");
        // Another team, on node B: not listed, not found, even shared.
        await using var chenOnB = await ConnectAsync(b, stranger.Auth.AccessToken);
        (await ListedAsync(chenOnB, _ => true, "a list")).ShouldBeEmpty();
        await chenOnB.SendAsync(new { type = "session", action = "attach", id = "on-a" });
        await chenOnB.ErrorAsync("SESSION_NOT_FOUND");
        await chenOnB.InputAsync("on-a", "echo intruder\n");
        await chenOnB.ErrorAsync("SESSION_NOT_FOUND");

        // The owner's page reconnects through the balancer to node B: it resumes from the last byte it showed, and types.
        var (_, end) = sarahOnA.Snapshot("on-a");
        await using var sarahOnB = await ConnectAsync(b, owner.Auth.AccessToken);
        await sarahOnB.SendAsync(new { type = "session", action = "attach", id = "on-a", since = end });
        var resumed = await sarahOnB.ReceiveAsync(m => TerminalClient.Is(m, "session", "attached"));
        resumed.GetProperty("read_only").GetBoolean().ShouldBeFalse();
        resumed.GetProperty("from").GetInt64().ShouldBe(end);
        await sarahOnB.CommandAsync("on-a", "echo typed-via-b n=$((8*8))");
        await sarahOnB.OutputUntilAsync("on-a", "typed-via-b n=64");
        sarahOnB.Transcript("on-a").ShouldNotContain("started-on-a", Case.Sensitive, "resumed, not replayed");
        await miguelOnB.OutputUntilAsync("on-a", "typed-via-b n=64");
        await sarahOnA.OutputUntilAsync("on-a", "typed-via-b n=64");
        // Every viewer, on either node, saw the same bytes at the same positions (once the prompt after it has reached both).
        await Eventually.UntilAsync(() => Task.FromResult(miguelOnB.Snapshot("on-a") == sarahOnA.Snapshot("on-a")),
            "the watcher on node B and the owner on node A have the same transcript and end");

        await sarahOnB.SendAsync(new { type = "session", action = "resize", id = "on-a", config = new { cols = 100, rows = 30 } });
        var resized = await miguelOnB.ReceiveAsync(m => TerminalClient.Is(m, "session", "resized"));
        resized.GetProperty("info").GetProperty("cols").GetInt32().ShouldBe(100);
        // A session id is the deployment's: node B will not open a second "on-a".
        await sarahOnB.SendAsync(new { type = "session", action = "create", id = "on-a", config = Sh });
        await sarahOnB.ErrorAsync("SESSION_EXISTS");

        // Sharing stopped from node B: the teammate watching through node B is detached, and it leaves his list.
        await sarahOnB.SendAsync(new { type = "session", action = "share", id = "on-a", shared = false });
        await miguelOnB.ReceiveAsync(m => TerminalClient.Is(m, "session", "detached"));
        await ListedAsync(miguelOnB, ids => !ids.Contains("on-a"), "the unshared terminal leaves the teammate's list");

        // Node A stops, and its shells with it: the owner watching through node B hears the terminal has ended.
        await nodeA.DisposeAsync();
        var gone = await sarahOnB.ErrorAsync("SESSION_NOT_FOUND");
        gone.GetProperty("session").GetString().ShouldBe("on-a");
        await ListedAsync(sarahOnB, ids => ids.Length == 0, "node A's terminals leave node B's list");
        // Node B's own connection goes on.
        await sarahOnB.CreateAsync("on-b", Sh);
        await sarahOnB.CommandAsync("on-b", "echo still-here n=$((9*9))");
        await sarahOnB.OutputUntilAsync("on-b", "still-here n=81");
    }

    [Fact]
    public async Task AWatcherOnNodeB_WhoStopsReading_IsHeldBackNotDropped_ThenDetachedWithWhereToCatchUp()
    {
        // Long enough that catching up on the scrollback afterwards, relayed between nodes on a busy machine, is not "too slow" again.
        var (a, b) = await StartNodesAsync(new() { ["Covibe:Terminals:SlowViewerSeconds"] = "5" });
        await using var nodeA = a;
        await using var nodeB = b;
        var (owner, member) = await a.CreateTeamWithMemberAsync("Terminals team");
        await using var sarahOnA = await ConnectAsync(a, owner.Auth.AccessToken);
        await sarahOnA.CreateAsync("busy", Sh);
        await sarahOnA.SendAsync(new { type = "session", action = "share", id = "busy" });
        await sarahOnA.ReceiveAsync(m => TerminalClient.Is(m, "session", "shared"));
        await sarahOnA.SendAsync(new { type = "session", action = "detach", id = "busy" });
        await sarahOnA.ReceiveAsync(m => TerminalClient.Is(m, "session", "detached"));

        // The teammate watches through node B, then his page stops reading (a phone put away) while the shell pours out
        // far more than the sockets between the nodes and him can hold.
        await using var miguelOnB = await ConnectAsync(b, member.AccessToken);
        await ListedAsync(miguelOnB, ids => ids.Contains("busy"), "node B lists the shared terminal");
        await miguelOnB.SendAsync(new { type = "session", action = "attach", id = "busy" });
        await miguelOnB.ReceiveAsync(m => TerminalClient.Is(m, "session", "attached"));
        miguelOnB.Socket.PauseReading();
        await sarahOnA.CommandAsync("busy", "yes covibe | head -c 100000000; echo finished-$((6*7))");

        // Node A holds the shell back for him, across node B, until he has been silent too long; then it detaches him
        // and the shell runs on to its end. When he reads again, he has every byte up to where he was detached, in order,
        // and is told from where to catch up.
        var shell = a.App.Services.GetRequiredService<Covibe.Terminals.TerminalManager>().Find("busy")!;
        await Eventually.UntilAsync(() => Task.FromResult(shell.Output.End), end => end > 100_000_000, "the run ends on node A", TimeSpan.FromSeconds(90));
        miguelOnB.Socket.ResumeReading();
        var tooSlow = await miguelOnB.ReceiveAsync(m => m.GetProperty("type").GetString() == "error", TimeSpan.FromSeconds(60), "the watcher detached");
        tooSlow.GetProperty("code").GetString().ShouldBe("VIEWER_TOO_SLOW", tooSlow.ToString());
        tooSlow.GetProperty("session").GetString().ShouldBe("busy");
        var since = long.Parse(System.Text.RegularExpressions.Regex.Match(tooSlow.GetProperty("error").GetString()!, "\"since\": (\\d+)").Groups[1].Value,
            System.Globalization.CultureInfo.InvariantCulture);
        since.ShouldBeGreaterThan(0);
        await Eventually.UntilAsync(() => Task.FromResult(miguelOnB.End("busy")), end => end == since, "his output up to where he was detached");
        var position = -1L;
        foreach (var output in miguelOnB.Outputs)
        {
            var end = output.GetProperty("end").GetInt64();
            var start = end - System.Text.Encoding.UTF8.GetByteCount(output.GetProperty("data").GetString()!);
            if (position >= 0)
            {
                start.ShouldBe(position, "no output lost between two frames");
            }
            position = end;
        }
        since.ShouldBeLessThan(100_000_000, "he was detached while the shell was still held back for him");

        // He attaches again from there: told what the scrollback no longer holds, and sees the end of the run.
        var seen = miguelOnB.Length("busy");
        await miguelOnB.SendAsync(new { type = "session", action = "attach", id = "busy", since });
        var again = await miguelOnB.ReceiveAsync(m => TerminalClient.Is(m, "session", "attached"));
        again.GetProperty("from").GetInt64().ShouldBeGreaterThanOrEqualTo(since);
        var finished = miguelOnB.OutputUntilAsync("busy", "finished-42", TimeSpan.FromSeconds(60), after: seen);
        var error = miguelOnB.ReceiveAsync(m => m.GetProperty("type").GetString() == "error", TimeSpan.FromSeconds(61), "an error");
        if (await Task.WhenAny(finished, error) == error && error.IsCompletedSuccessfully)
        {
            throw new ShouldAssertException($"Catching up failed: {await error}");
        }
        await finished;
    }
}
