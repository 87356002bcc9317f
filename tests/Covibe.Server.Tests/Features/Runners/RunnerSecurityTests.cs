using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Covibe.Server.Tests;

/// <summary>
/// A runner's credential is scoped to its own VM and revocable at once. Tried from where an attacker stands: a stolen or
/// expired token, a revoked credential, a runner speaking for another VM's agents, a runner credential used as a member,
/// a member token used as a runner.
/// </summary>
public sealed class RunnerSecurityTests
{
    private static async Task<(TestServer Server, CreateTeamResponse Owner, HttpClient Client)> StartAsync()
    {
        var server = await TestServer.StartAsync(settings: AgentHelpers.Settings());
        var owner = await server.CreateTeamAsync();
        return (server, owner, server.Client(owner.Auth.AccessToken));
    }

    [Fact]
    public async Task ARunnerVmWithAHostOrKey_IsRefusedFieldByField_AndNothingIsAdded()
    {
        var (server, _, client) = await StartAsync();
        await using var scope = server;
        using var _ = client;
        var reply = await client.PostAsJsonAsync("/api/vm/register", new RegisterVmRequest("build box", "10.0.0.5", null, null, Password: "hunter2", ConnectionType: "polling"));
        var problem = await reply.ShouldBeProblemAsync(HttpStatusCode.BadRequest, "validation");
        problem.GetProperty("errors").GetProperty("connectionType")[0].GetString()!.ShouldContain("needs no host, key, password or host key");
        problem.ToString().ShouldNotContain("hunter2");
        (await client.GetFromJsonAsync<VmDto[]>("/api/vm/list"))!.ShouldBeEmpty();
    }

    [Fact]
    public async Task RegistrationTokens_WorkOnceAndOnlyUntilTheyExpire()
    {
        var (server, _, client) = await StartAsync();
        await using var scope = server;
        using var _ = client;
        var vm = await RunnerTests.AddRunnerVmAsync(client);
        using var anonymous = new HttpClient { BaseAddress = server.Url };

        (await FakeRunner.RegisterAsync(server.Url, vm.RegistrationToken!)).VmId.ShouldBe(vm.Id);
        // Stolen after use: worthless.
        await (await anonymous.PostAsJsonAsync("/api/runner/register", new RunnerRegisterRequest(vm.RegistrationToken))).ShouldBeProblemAsync(HttpStatusCode.Unauthorized, "runner-token-invalid");
        // Made up, or not a token at all.
        await (await anonymous.PostAsJsonAsync("/api/runner/register", new RunnerRegisterRequest("cvreg_" + new string('A', 43)))).ShouldBeProblemAsync(HttpStatusCode.Unauthorized, "runner-token-invalid");
        await (await anonymous.PostAsJsonAsync("/api/runner/register", new RunnerRegisterRequest(null))).ShouldBeProblemAsync(HttpStatusCode.Unauthorized, "runner-token-invalid");

        // A fresh token for the same VM, left to expire.
        var fresh = (await (await client.PostAsync($"/api/vm/{vm.Id}/registration-token", null)).Content.ReadFromJsonAsync<RunnerRegistrationDto>())!;
        fresh.Command.ShouldContain(fresh.RegistrationToken);
        await using (var db = await server.App.Services.GetRequiredService<IDbContextFactory<CovibeDb>>().CreateDbContextAsync())
        {
            await db.Vms.Where(v => v.Id == vm.Id).ExecuteUpdateAsync(s => s.SetProperty(v => v.RunnerRegistrationExpiresAt, TimeProvider.System.GetUtcNow().UtcDateTime.AddSeconds(-1)));
            // Only hashes are stored: neither token nor credential is in the database.
            var row = await db.Vms.AsNoTracking().SingleAsync(v => v.Id == vm.Id);
            new[] { row.RunnerRegistrationHash, row.RunnerCredentialHash }.ShouldAllBe(h => h == null || h.Length == 64);
        }
        var expired = await anonymous.PostAsJsonAsync("/api/runner/register", new RunnerRegisterRequest(fresh.RegistrationToken));
        (await expired.ShouldBeProblemAsync(HttpStatusCode.Unauthorized, "runner-token-expired")).ToString().ShouldNotContain(fresh.RegistrationToken);
        await DiskScan.ShouldNotHoldAsync(server.DataDirectory, vm.RegistrationToken!, fresh.RegistrationToken);
    }

    [Fact]
    public async Task ARunnerCredential_IsNoMemberLogin_AndAMemberLoginIsNoRunner()
    {
        var (server, owner, client) = await StartAsync();
        await using var scope = server;
        using var _ = client;
        var vm = await RunnerTests.AddRunnerVmAsync(client);
        var runner = await FakeRunner.RegisterAsync(server.Url, vm.RegistrationToken!);

        using var asRunner = server.Client(runner.Credential);
        (await asRunner.GetAsync("/api/agent/list")).StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        (await asRunner.GetAsync("/api/vm/list")).StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        (await asRunner.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest("x", "mock"))).StatusCode.ShouldBe(HttpStatusCode.Unauthorized);

        // A member's token on the runner's endpoints.
        using var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Authorization", $"Bearer {owner.Auth.AccessToken}");
        socket.Options.CollectHttpResponseDetails = true;
        await Should.ThrowAsync<WebSocketException>(() => socket.ConnectAsync(new Uri($"ws://127.0.0.1:{server.Url.Port}/api/runner/connect"), CancellationToken.None));
        socket.HttpStatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        await (await client.PostAsJsonAsync("/api/runner/poll", new RunnerPoll([]))).ShouldBeProblemAsync(HttpStatusCode.Unauthorized, "runner-credential-invalid");
        await (await client.PostAsync("/api/runner/rotate", null)).ShouldBeProblemAsync(HttpStatusCode.Unauthorized, "runner-credential-invalid");
        // Nor in the URL: the credential is only ever a header.
        using var anonymous = new HttpClient { BaseAddress = server.Url };
        (await anonymous.PostAsJsonAsync($"/api/runner/poll?access_token={runner.Credential}", new RunnerPoll([]))).StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task ARunner_SpeaksForItsOwnVmOnly()
    {
        var (server, owner, client) = await StartAsync();
        await using var scope = server;
        using var _ = client;
        var vmA = await RunnerTests.AddRunnerVmAsync(client, "a");
        var vmB = await RunnerTests.AddRunnerVmAsync(client, "b");
        var a = await FakeRunner.RegisterAsync(server.Url, vmA.RegistrationToken!);
        var b = await FakeRunner.RegisterAsync(server.Url, vmB.RegistrationToken!);
        await using var runnerA = await FakeRunner.ConnectAsync(server.Url, a.Credential, a.VmId);
        await using var runnerB = await FakeRunner.ConnectAsync(server.Url, b.Credential, b.VmId);
        await runnerA.ReceiveAsync(m => m.Type == RunnerProtocol.Welcome);
        (await runnerB.ReceiveAsync(m => m.Type == RunnerProtocol.Welcome)).VmId.ShouldBe(vmB.Id);

        // An agent on VM B: the server asks B's runner to start it; B answers with its process and output.
        var spawning = RunnerTests.SpawnAsync(client, vmB.Id, "lines");
        var start = await runnerB.ReceiveAsync(m => m.Type == RunnerProtocol.Start);
        start.Launch!.Runtime.ShouldBe($"agent_logs/{start.AgentId}");
        await runnerB.SendAsync(new RunnerMessage(RunnerProtocol.Result, Id: start.Id, Process: new RunnerProcess($"/home/b/agent_logs/{start.AgentId}", 4242, 1)));
        var agent = await spawning;
        await runnerB.SendAsync(new RunnerMessage(RunnerProtocol.Output, AgentId: agent.Id, Offset: 0, Data: Convert.ToBase64String("from B\n"u8)));

        // A's runner tries to write into B's agent, end it, and read it: refused, and B's agent is untouched.
        await runnerA.SendAsync(new RunnerMessage(RunnerProtocol.Output, AgentId: agent.Id, Offset: 7, Data: Convert.ToBase64String("forged by A\n"u8)));
        (await runnerA.ReceiveAsync(m => m.Type == RunnerProtocol.Error)).Error!.ShouldContain("not one of this VM's agents");
        await runnerA.SendAsync(new RunnerMessage(RunnerProtocol.State, AgentId: agent.Id, State: "exit", ExitCode: 0, Size: 7));
        (await runnerA.ReceiveAsync(m => m.Type == RunnerProtocol.Error)).Error!.ShouldContain("not one of this VM's agents");
        // A resend of what B already sent, and B's next piece: once each.
        await runnerB.SendAsync(new RunnerMessage(RunnerProtocol.Output, AgentId: agent.Id, Offset: 0, Data: Convert.ToBase64String("from B\nmore\n"u8)));
        await runnerB.SendAsync(new RunnerMessage(RunnerProtocol.State, AgentId: agent.Id, State: "exit", ExitCode: 0, Size: 12));
        (await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id)).Status.ShouldBe("completed");
        Encoding.UTF8.GetString(await server.OutputAsync(owner.Auth.AccessToken, agent.Id)).ShouldBe("from B\nmore\n");

        // A gap is asked for again from what the server holds.
        var second = RunnerTests.SpawnAsync(client, vmB.Id, "lines");
        var start2 = await runnerB.ReceiveAsync(m => m.Type == RunnerProtocol.Start);
        await runnerB.SendAsync(new RunnerMessage(RunnerProtocol.Result, Id: start2.Id, Process: new RunnerProcess($"/home/b/agent_logs/{start2.AgentId}", 4243, 1)));
        await second;
        await runnerB.SendAsync(new RunnerMessage(RunnerProtocol.Output, AgentId: start2.AgentId, Offset: 100, Data: Convert.ToBase64String("later\n"u8)));
        var resend = await runnerB.ReceiveAsync(m => m.Type == RunnerProtocol.Follow);
        (resend.AgentId, resend.Offset).ShouldBe((start2.AgentId, 0L));

        // Garbage gets a clear error and the connection stays.
        await runnerA.SendAsync(new RunnerMessage("launch_missiles"));
        (await runnerA.ReceiveAsync(m => m.Type == RunnerProtocol.Error)).Error!.ShouldContain("Unknown message type");
        await runnerA.SendAsync(new RunnerMessage(RunnerProtocol.Heartbeat));
        (await client.GetFromJsonAsync<VmDto[]>("/api/vm/list"))!.Single(v => v.Id == vmA.Id).Status.ShouldBe("online");
    }

    [Fact]
    public async Task Revoking_EndsTheConnectionAtOnce_AndTheCredentialStopsWorking_RotationHasNoGap()
    {
        var (server, owner, client) = await StartAsync();
        await using var scope = server;
        using var _ = client;
        var vm = await RunnerTests.AddRunnerVmAsync(client);
        var registered = await FakeRunner.RegisterAsync(server.Url, vm.RegistrationToken!);

        // Rotation: the old credential works until the new one is first used, then never again.
        using var old = new HttpClient { BaseAddress = server.Url };
        old.DefaultRequestHeaders.Authorization = new("Bearer", registered.Credential);
        var rotated = (await (await old.PostAsync("/api/runner/rotate", null)).Content.ReadFromJsonAsync<RunnerRotateResponse>())!;
        rotated.Credential.ShouldNotBe(registered.Credential);
        (await old.PostAsync("/api/runner/confirm", null)).StatusCode.ShouldBe(HttpStatusCode.NoContent); // still good meanwhile
        using var current = new HttpClient { BaseAddress = server.Url };
        current.DefaultRequestHeaders.Authorization = new("Bearer", rotated.Credential);
        (await current.PostAsync("/api/runner/confirm", null)).StatusCode.ShouldBe(HttpStatusCode.NoContent);
        await (await old.PostAsync("/api/runner/confirm", null)).ShouldBeProblemAsync(HttpStatusCode.Unauthorized, "runner-credential-invalid");

        // The team hears the VM come online (vm_updated): a teammate without where it is.
        var mate = await server.JoinAsync(owner.Invite.InviteCode, "Miguel");
        await using var watching = await server.ConnectAsync(mate.AccessToken);
        await watching.ReceiveAsync("team_joined");
        await using var runner = await FakeRunner.ConnectAsync(server.Url, rotated.Credential, vm.Id);
        await runner.ReceiveAsync(m => m.Type == RunnerProtocol.Welcome);
        var online = await watching.ReceiveAsync(m => m.GetProperty("type").GetString() == "vm_updated" && m.GetProperty("vm").GetProperty("status").GetString() == "online");
        online.GetProperty("vm").GetProperty("isOwner").GetBoolean().ShouldBeFalse();
        online.GetProperty("vm").TryGetProperty("username", out var username).ShouldBeFalse(username.ToString());
        // A teammate cannot revoke it; the owner can, and the connection ends at once with the revoked code.
        using var teammate = server.Client(mate.AccessToken);
        (await teammate.PostAsync($"/api/vm/{vm.Id}/revoke", null)).StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        var revoked = (await (await client.PostAsync($"/api/vm/{vm.Id}/revoke", null)).Content.ReadFromJsonAsync<VmDto>())!;
        revoked.Status.ShouldBe("revoked");
        await runner.ClosedAsync(TimeSpan.FromSeconds(10));
        runner.CloseStatus.ShouldBe((WebSocketCloseStatus)RunnerProtocol.ClosedRevoked);
        await watching.ReceiveAsync(m => m.GetProperty("type").GetString() == "vm_updated" && m.GetProperty("vm").GetProperty("status").GetString() == "revoked");
        await (await current.PostAsJsonAsync("/api/runner/poll", new RunnerPoll([]))).ShouldBeProblemAsync(HttpStatusCode.Unauthorized, "runner-credential-invalid");
        var audit = (await client.GetFromJsonAsync<VmAuditDto[]>($"/api/vm/{vm.Id}/audit"))!.Select(a => a.Action).ToList();
        audit.ShouldContain("credential.rotate");
        audit.ShouldContain("credential.rotated");
        audit.ShouldContain("runner.revoke");
        await DiskScan.ShouldNotHoldAsync(server.DataDirectory, registered.Credential, rotated.Credential);
    }
}
