using System.Net;
using System.Net.Http.Json;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Tests;

/// <summary>Seed 000's pool of shared VMs from config/vm-instances.json and assignVMToUser.</summary>
public sealed class VmPoolTests : IDisposable
{
    private readonly string _directory = StartupTests.TempDirectory();

    private string PoolFile(string json)
    {
        Directory.CreateDirectory(_directory);
        var path = Path.Combine(_directory, "vm-instances.json");
        File.WriteAllText(path, json);
        return path;
    }

    [Fact]
    public async Task Assign_RespectsMaxUsersConnectionLimitsAndStatus_AndSaysWhenNoneIsFree()
    {
        // The seed's own example, with a second VM, one under maintenance, and a pool-wide limit of 2.
        var file = PoolFile("""
            {
              "instances": [
                { "id": "vm-prod-001", "host": "ec2-host.compute-1.amazonaws.com", "region": "us-east-1", "instanceType": "t3.large",
                  "status": "available", "sshKeyPath": "/path/to/key.pem", "maxUsers": 5, "currentUsers": 1 },
                { "id": "vm-prod-002", "host": "10.0.0.2", "region": "us-east-1", "instanceType": "t3.large", "status": "available", "maxUsers": 1, "currentUsers": 0 },
                { "id": "vm-prod-003", "host": "10.0.0.3", "status": "maintenance", "maxUsers": 5, "currentUsers": 0 }
              ],
              "defaultSSHKeyPath": "/path/to/default-key.pem",
              "maxConnectionsPerVM": 2
            }
            """);
        await using var server = await TestServer.StartAsync(settings: new Dictionary<string, string> { ["Covibe:Vms:InstancesFile"] = file });
        var owner = await server.CreateTeamAsync();
        var members = new List<AuthResponse> { owner.Auth };
        for (var i = 0; i < 2; i++)
        {
            members.Add(await server.JoinAsync(owner.Invite.InviteCode, $"Member{i}"));
        }

        var assigned = new List<string>();
        foreach (var member in members.Take(2))
        {
            using var client = server.Client(member.AccessToken);
            using var reply = await client.PostAsync("/api/vm/assign", null);
            reply.StatusCode.ShouldBe(HttpStatusCode.OK, await reply.Content.ReadAsStringAsync());
            assigned.Add((await reply.Content.ReadFromJsonAsync<VmAssignmentDto>())!.Instance.Id);
        }
        // Least loaded first: 002 (empty, room for 1), then 001 (1 user already, room for 1 more
        // under the pool-wide limit of 2); 003 is in maintenance. Then nothing is left.
        assigned.ShouldBe(["vm-prod-002", "vm-prod-001"]);

        using var last = server.Client(members[2].AccessToken);
        var full = await (await last.PostAsync("/api/vm/assign", null)).ShouldBeProblemAsync(HttpStatusCode.Conflict, "no-vm-available");
        full.GetProperty("detail").GetString()!.ShouldContain("register your own VM");

        // The same member gets the same VM again; releasing makes room.
        using var first = server.Client(members[0].AccessToken);
        (await (await first.PostAsync("/api/vm/assign", null)).Content.ReadFromJsonAsync<VmAssignmentDto>())!.Instance.Id.ShouldBe(assigned[0]);
        (await first.DeleteAsync("/api/vm/assign")).StatusCode.ShouldBe(HttpStatusCode.NoContent);
        (await (await last.PostAsync("/api/vm/assign", null)).Content.ReadFromJsonAsync<VmAssignmentDto>())!.Instance.Id.ShouldBe(assigned[0]);

        var pool = (await first.GetFromJsonAsync<PoolVmDto[]>("/api/vm/pool"))!;
        pool.Select(p => (p.Id, p.CurrentUsers, p.MaxUsers)).ShouldBe([("vm-prod-001", 2, 2), ("vm-prod-002", 1, 1), ("vm-prod-003", 0, 2)]);
        (await first.GetStringAsync("/api/vm/pool")).ShouldNotContain("key.pem");
    }

    [Theory]
    [InlineData("{ \"instances\": [ { \"host\": \"h\" } ], \"defaultSSHKeyPath\": \"/k\" }", "instances[0] needs 'id' and 'host'")]
    [InlineData("{ \"instances\": [ { \"id\": \"a\", \"host\": \"h\" } ] }", "no 'sshKeyPath'")]
    [InlineData("{ \"defaultSSHKeyPath\": \"/k\" }", "'instances' is missing")]
    [InlineData("{ \"instances\": [ ", "not valid JSON")]
    [InlineData("{ \"instances\": [ { \"id\": \"a\", \"host\": \"h\" }, { \"id\": \"a\", \"host\": \"i\" } ], \"defaultSSHKeyPath\": \"/k\" }", "used twice")]
    public async Task BadPoolFile_StopsStartupNamingTheProblem(string json, string problem)
    {
        var file = PoolFile(json);
        var error = await Should.ThrowAsync<OptionsValidationException>(() =>
            TestServer.StartAsync(settings: new Dictionary<string, string> { ["Covibe:Vms:InstancesFile"] = file }));
        error.Message.ShouldContain(problem);
        error.Message.ShouldContain("Covibe:Vms:InstancesFile");
    }

    [Fact]
    public async Task NoPoolFile_AssignSaysToRegisterYourOwn()
    {
        await using var server = await TestServer.StartAsync(settings: new Dictionary<string, string> { ["Covibe:Vms:InstancesFile"] = Path.Combine(_directory, "absent.json") });
        var owner = await server.CreateTeamAsync();
        using var client = server.Client(owner.Auth.AccessToken);
        await (await client.PostAsync("/api/vm/assign", null)).ShouldBeProblemAsync(HttpStatusCode.NotFound, "not-found");
        (await client.GetFromJsonAsync<PoolVmDto[]>("/api/vm/pool"))!.ShouldBeEmpty();
    }

    public void Dispose() => StartupTests.Delete(_directory);
}
