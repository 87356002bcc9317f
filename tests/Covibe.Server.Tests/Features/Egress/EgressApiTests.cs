using System.Net;
using System.Net.Http.Json;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary><c>/api/team/egress</c>: every member sees the policy; only the owner sets it, within the operator's ceiling, with clear errors.</summary>
public sealed class EgressApiTests
{
    [Fact]
    public async Task TheOwnerSetsThePolicy_WithinTheCeiling_MembersSeeIt_AndCannotChangeIt()
    {
        await using var server = await TestServer.StartAsync(settings: new Dictionary<string, string>
        {
            ["Covibe:Egress:Default"] = "allowlist",
            ["Covibe:Egress:Ceiling"] = "allowlist",
        });
        var (owner, member) = await server.CreateTeamWithMemberAsync();
        using var ann = server.Client(owner.Auth.AccessToken);
        using var miguel = server.Client(member.AccessToken);

        // The operator's default, and its list, until the owner chooses.
        var first = (await miguel.GetFromJsonAsync<EgressPolicyResponse>("/api/team/egress"))!;
        (first.Mode, first.Chosen, first.Default, first.Ceiling).ShouldBe(("allowlist", null, "allowlist", "allowlist"));
        first.Allow.ShouldContain("api.anthropic.com");
        first.Blocked.ShouldBeEmpty();

        // Above the ceiling, bad entries: each named, nothing saved.
        using (var refused = await ann.PutAsJsonAsync("/api/team/egress", new SetEgressPolicyRequest("open", ["exa mple.org", "10.0.0.0/40"])))
        {
            var errors = (await refused.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "validation")).GetProperty("errors");
            errors.GetProperty("mode")[0].GetString()!.ShouldContain("at most 'allowlist' (Covibe:Egress:Ceiling)");
            errors.GetProperty("allow[0]")[0].GetString()!.ShouldContain("'exa mple.org' is not a host name");
            errors.GetProperty("allow[1]")[0].GetString()!.ShouldContain("not an IPv4 address or CIDR");
        }
        using (var unknown = await ann.PutAsJsonAsync("/api/team/egress", new SetEgressPolicyRequest("closed", null)))
        {
            unknown.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        }
        (await miguel.GetFromJsonAsync<EgressPolicyResponse>("/api/team/egress"))!.ShouldBeEquivalentTo(first);

        // A member cannot change it.
        using (var notOwner = await miguel.PutAsJsonAsync("/api/team/egress", new SetEgressPolicyRequest("none", null)))
        {
            notOwner.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
            (await notOwner.Content.ReadAsStringAsync()).ShouldContain("Only the team owner");
        }

        // The owner's list, and back to the default; a teammate's open page hears of it at once.
        await using var watching = await server.ConnectAsync(member.AccessToken);
        await watching.ReceiveAsync("team_joined");
        var set = await (await ann.PutAsJsonAsync("/api/team/egress", new SetEgressPolicyRequest("allowlist", ["git.example.com", "*.example.org", "10.1.0.0/16"])))
            .Content.ReadFromJsonAsync<EgressPolicyResponse>();
        (set!.Mode, set.Chosen).ShouldBe(("allowlist", "allowlist"));
        set.Allow.ShouldBe(["git.example.com", "*.example.org", "10.1.0.0/16"]);
        (await miguel.GetFromJsonAsync<EgressPolicyResponse>("/api/team/egress"))!.Allow.ShouldBe(set.Allow);
        var told = await watching.ReceiveAsync("egress_policy");
        told.GetProperty("by").GetString().ShouldBe(owner.Auth.User.Name);
        told.GetProperty("policy").GetProperty("mode").GetString().ShouldBe("allowlist");
        told.GetProperty("policy").GetProperty("allow").EnumerateArray().Select(e => e.GetString()).ShouldBe(set.Allow);
        var none = await (await ann.PutAsJsonAsync("/api/team/egress", new SetEgressPolicyRequest("none", null))).Content.ReadFromJsonAsync<EgressPolicyResponse>();
        (none!.Mode, none.Chosen).ShouldBe(("none", "none"));
        none.Allow.ShouldContain("api.anthropic.com", "no list of its own: the operator's");
    }

    [Fact]
    public async Task ATeamAboveALoweredCeiling_IsHeldToIt()
    {
        var data = Path.Combine(Path.GetTempPath(), "covibe-egress-" + Guid.NewGuid().ToString("N")[..8]);
        CreateTeamResponse owner;
        await using (var server = await TestServer.StartAsync(dataDirectory: data))
        {
            owner = await server.CreateTeamAsync();
            using var ann = server.Client(owner.Auth.AccessToken);
            (await ann.PutAsJsonAsync("/api/team/egress", new SetEgressPolicyRequest("open", null))).StatusCode.ShouldBe(HttpStatusCode.OK);
        }
        await using (var server = await TestServer.StartAsync(dataDirectory: data, settings: new Dictionary<string, string> { ["Covibe:Egress:Ceiling"] = "none" }))
        {
            using var ann = server.Client(owner.Auth.AccessToken); // the same keys: the token still holds
            var policy = (await ann.GetFromJsonAsync<EgressPolicyResponse>("/api/team/egress"))!;
            (policy.Mode, policy.Chosen, policy.Ceiling).ShouldBe(("none", "open", "none"));
        }
        Directory.Delete(data, recursive: true);
    }

    [Fact]
    public async Task FromTheCommandLine_TheOwnerSeesAndSetsThePolicy_AndABadEntryIsNamed()
    {
        await using var server = await TestServer.StartAsync();
        var owner = await server.CreateTeamAsync();
        var home = Path.Combine(Path.GetTempPath(), "covibe-egress-cli-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            var cli = new CliRunner(home);
            (await cli.RunAsync(TestServer.Password, "login", "--server", server.Url.ToString().TrimEnd('/'), "--email", owner.Auth.User.Email, "--password-stdin")).ExitCode.ShouldBe(0);
            (await cli.RunAsync(null, "egress")).Stdout.ShouldContain("Egress: open: your team's code may connect anywhere on the internet (the server's default");

            var set = await cli.RunAsync(null, "egress", "set", "allowlist", "--allow", "git.example.com", "--allow", "10.1.0.0/16");
            set.ExitCode.ShouldBe(0, set.Stderr);
            set.Stdout.ShouldContain("Egress: allowlist: your team's code may connect only to these");
            set.Stdout.ShouldContain("  git.example.com\n  10.1.0.0/16");

            var bad = await cli.RunAsync(null, "egress", "set", "allowlist", "--allow", "not a host");
            bad.ExitCode.ShouldNotBe(0);
            bad.Stderr.ShouldContain("'not a host' is not a host name");
            (await cli.RunAsync(null, "egress")).Stdout.ShouldContain("git.example.com", customMessage: "nothing changed by the refused one");
        }
        finally
        {
            Directory.Delete(home, recursive: true);
        }
    }
}
