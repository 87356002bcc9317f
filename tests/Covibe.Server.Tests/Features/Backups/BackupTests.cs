using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>
/// covibe backup and covibe restore (issue 29, point 4): a live server backed up while an agent streams comes back on a
/// fresh data directory, its machine gone: members log in, a VM's sealed key still opens it, the runner VM reconnects, and
/// the agent's history replays byte for byte up to where the backup took it. A restore never mixes into a target that
/// holds anything, a backup encrypted to an operator's key opens with that key only, and a full disk fails clearly.
/// </summary>
public sealed class BackupTests(SshServer ssh) : IClassFixture<SshServer>, IDisposable
{
    private readonly string _root = StartupTests.TempDirectory();

    public void Dispose() => StartupTests.Delete(_root);

    private Dictionary<string, string> Settings(int port)
    {
        var settings = RunnerTests.Settings(ssh);
        settings["urls"] = $"http://127.0.0.1:{port}"; // the restored server answers where the old one did: the runner finds it
        AgentHelpers.AddType(settings, "stream", ["sh", "-c", "i=0; while [ $i -lt 200 ]; do i=$((i+1)); echo line $i; sleep 0.05; done"]);
        return settings;
    }

    [Fact]
    public async Task ALiveServer_BackedUpMidStream_ComesBackOnAFreshDirectory_MembersVmsTheRunnerAndHistoryIntact()
    {
        var (first, second, backup) = (Path.Combine(_root, "first"), Path.Combine(_root, "second"), Path.Combine(_root, "covibe.backup"));
        var settings = Settings(PostgresServer.FreePort());
        var server = await TestServer.StartAsync(settings: settings, dataDirectory: first);
        var (owner, member) = await server.CreateTeamWithMemberAsync("Backed up");
        using var sarah = server.Client(owner.Auth.AccessToken);
        var vm = await AgentMergeTests.OkAsync<VmDto>(await sarah.PostAsJsonAsync("/api/vm/register",
            new RegisterVmRequest("Sarah's VM", "127.0.0.1", ssh.Port, ssh.User, PrivateKey: ssh.ClientPrivateKey, HostKeyFingerprint: ssh.HostKeyFingerprint)), HttpStatusCode.Created);
        var runnerVm = await RunnerTests.AddRunnerVmAsync(sarah, type: "tunnel");
        await using var machine = RunnerMachine.Create(ssh);
        machine.Start(["--server", server.Url.ToString(), "--token", runnerVm.RegistrationToken!, "--transport", "websocket"]);
        await RunnerTests.OnlineAsync(sarah, runnerVm.Id);
        var agent = await server.SpawnAsync(member.AccessToken, "Stream for ten seconds", "stream");
        await Eventually.UntilAsync(() => server.OutputAsync(member.AccessToken, agent.Id), o => System.Text.Encoding.UTF8.GetString(o).Contains("line 10\n"), "the agent streams");

        // Backed up while it streams; the server goes on.
        var cli = new CliRunner(Path.Combine(_root, "cli"));
        var made = await cli.RunAsync(null, "backup", "--data", first, "--out", backup);
        made.ExitCode.ShouldBe(0, made.Stderr);
        made.Stdout.ShouldContain("Backed up to " + backup);
        (File.GetUnixFileMode(backup) & (UnixFileMode.GroupRead | UnixFileMode.OtherRead)).ShouldBe(UnixFileMode.None);
        (await server.WaitFinishedAsync(member.AccessToken, agent.Id, TimeSpan.FromSeconds(60))).Status.ShouldBe("completed");
        var whole = AgentHelpers.LogOf(server, agent.Id);

        // The machine is lost: the server, its data directory, everything but the backup. The runner VM stays up and keeps
        // trying (the server's stop lets it go at once rather than holding the stop for the host's shutdown timeout).
        await server.DisposeAsync();
        TestServer.KillAgentsOf(first);
        Directory.Delete(first, recursive: true);

        // A restore goes into an empty directory only.
        Directory.CreateDirectory(second);
        await File.WriteAllTextAsync(Path.Combine(second, "notes.txt"), "someone's");
        var refused = await cli.RunAsync(null, "restore", "--data", second, backup);
        refused.ExitCode.ShouldNotBe(0);
        refused.Stderr.ShouldContain("is not empty");
        File.ReadAllText(Path.Combine(second, "notes.txt")).ShouldBe("someone's");
        File.Delete(Path.Combine(second, "notes.txt"));
        var restored = await cli.RunAsync(null, "restore", "--data", second, backup);
        restored.ExitCode.ShouldBe(0, restored.Stderr);

        await using var again = await TestServer.StartAsync(settings: settings, dataDirectory: second);
        // Members log in with their passwords.
        using var anonymous = again.Client();
        var login = await AgentMergeTests.OkAsync<AuthResponse>(await anonymous.PostAsJsonAsync("/api/auth/login", new LoginRequest(member.User.Email, TestServer.Password)), HttpStatusCode.OK);
        login.Team.Name.ShouldBe("Backed up");
        using var miguel = again.Client(login.AccessToken);

        // The agent's history, as far as the backup took it, byte for byte (it was cut mid-stream; the agent is lost with its machine).
        var history = await miguel.OutputAsync(agent.Id);
        history.Length.ShouldBeGreaterThan(0);
        history.Length.ShouldBeLessThan(whole.Length);
        history.ShouldBe(whole[..history.Length]);
        (await Eventually.UntilAsync(() => again.GetAgentAsync(login.AccessToken, agent.Id), a => AgentStatuses.IsFinal(a.Status), "the agent is settled")).Status.ShouldBe("lost");

        // The VM's sealed key opens it again (the same ENCRYPTION_KEY), and the runner VM reconnects by itself.
        var login2 = await AgentMergeTests.OkAsync<AuthResponse>(await anonymous.PostAsJsonAsync("/api/auth/login", new LoginRequest(owner.Auth.User.Email, TestServer.Password)), HttpStatusCode.OK);
        using var sarahAgain = again.Client(login2.AccessToken);
        var checkedVm = await AgentMergeTests.OkAsync<VmDto>(await sarahAgain.PostAsync($"/api/vm/{vm.Id}/check", null), HttpStatusCode.OK);
        checkedVm.Status.ShouldBe("online");
        await RunnerTests.OnlineAsync(sarahAgain, runnerVm.Id);
    }

    [Fact]
    public async Task AnEncryptedBackup_OpensWithItsKeyOnly_AFullDiskFailsClearly_AndNothingHalfMadeIsLeft()
    {
        var data = Path.Combine(_root, "live");
        await using var server = await TestServer.StartAsync(settings: AgentHelpers.Settings(), dataDirectory: data);
        await server.CreateTeamAsync("Encrypted", "Chen");
        var cli = new CliRunner(Path.Combine(_root, "cli"));
        var (key, publicKey, other) = (Path.Combine(_root, "key.pem"), Path.Combine(_root, "key.pub.pem"), Path.Combine(_root, "other.pem"));
        using (var rsa = RSA.Create(3072))
        {
            await File.WriteAllTextAsync(key, rsa.ExportPkcs8PrivateKeyPem());
            await File.WriteAllTextAsync(publicKey, rsa.ExportSubjectPublicKeyInfoPem());
        }
        using (var rsa = RSA.Create(2048))
        {
            await File.WriteAllTextAsync(other, rsa.ExportPkcs8PrivateKeyPem());
        }

        var backup = Path.Combine(_root, "sealed.backup");
        var made = await cli.RunAsync(null, "backup", "--data", data, "--out", backup, "--encrypt-to", publicKey);
        made.ExitCode.ShouldBe(0, made.Stderr);
        made.Stdout.ShouldContain("encrypted to the key given");
        (await cli.RunAsync(null, "backup", "--data", data, "--out", backup)).Stderr.ShouldContain("exists already");
        (await cli.RunAsync(null, "backup", "--data", data, "--out", Path.Combine(data, "inside.backup"))).Stderr.ShouldContain("inside the data directory");

        var target = Path.Combine(_root, "restored");
        (await cli.RunAsync(null, "restore", "--data", target, backup)).Stderr.ShouldContain("This backup is encrypted");
        (await cli.RunAsync(null, "restore", "--data", target, backup, "--decrypt-with", other)).Stderr.ShouldContain("not encrypted to this key");
        (await cli.RunAsync(null, "restore", "--data", target, backup, "--decrypt-with", publicKey)).Stderr.ShouldContain("is not an RSA private key");
        // A backup changed anywhere does not restore, and leaves the target empty.
        var changed = Path.Combine(_root, "changed.backup");
        var bytes = await File.ReadAllBytesAsync(backup);
        bytes[bytes.Length / 2] ^= 0x40;
        await File.WriteAllBytesAsync(changed, bytes);
        (await cli.RunAsync(null, "restore", "--data", target, changed, "--decrypt-with", key)).Stderr.ShouldContain("damaged or was changed");
        (!Directory.Exists(target) || !Directory.EnumerateFileSystemEntries(target).Any()).ShouldBeTrue();
        var restored = await cli.RunAsync(null, "restore", "--data", target, backup, "--decrypt-with", key);
        restored.ExitCode.ShouldBe(0, restored.Stderr);
        File.Exists(Path.Combine(target, "covibe.db")).ShouldBeTrue();

        // A disk that fills up: the backup fails saying so, leaves no part of itself, and the server is untouched.
        if (Covibe.Execution.CurrentProcess.IsRoot)
        {
            var small = Directory.CreateDirectory(Path.Combine(_root, "small")).FullName;
            (await Run("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", small)).ShouldBe(0);
            try
            {
                var full = await cli.RunAsync(null, "backup", "--data", data, "--out", Path.Combine(small, "covibe.backup"));
                full.ExitCode.ShouldNotBe(0);
                full.Stderr.ShouldContain("No space left on device");
                full.Stderr.ShouldContain("Nothing was kept");
                Directory.EnumerateFileSystemEntries(small).ShouldBeEmpty();
            }
            finally
            {
                await Run("umount", small);
            }
            (await server.Client().GetAsync("/health")).StatusCode.ShouldBe(HttpStatusCode.OK);
        }
    }

    private static async Task<int> Run(string program, params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(program, args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        await process.WaitForExitAsync();
        return process.ExitCode;
    }
}

/// <summary>The same on PostgreSQL: <c>pg_dump</c> while the server runs, <c>pg_restore</c> into an empty database only.</summary>
[Collection(PostgresGroup.Name)]
public sealed class PostgresBackupTests(PostgresServer postgres) : IDisposable
{
    private readonly string _root = StartupTests.TempDirectory();

    public void Dispose() => StartupTests.Delete(_root);

    [Fact]
    public async Task APostgresServer_BackedUp_RestoresIntoAnEmptyDatabaseOnly_WithItsMembersAndHistory()
    {
        var (first, second) = (Path.Combine(_root, "first"), Path.Combine(_root, "second"));
        var database = await postgres.CreateDatabaseAsync();
        var server = await TestServer.StartAsync(postgres: database, settings: AgentHelpers.Settings(), dataDirectory: first);
        var owner = await server.CreateTeamAsync("On PostgreSQL", "Ana");
        var agent = await server.SpawnAsync(owner.Auth.AccessToken, "Write a haiku", "mock");
        await server.WaitFinishedAsync(owner.Auth.AccessToken, agent.Id);
        var history = await server.OutputAsync(owner.Auth.AccessToken, agent.Id);

        var cli = new CliRunner(Path.Combine(_root, "cli"));
        var env = new Dictionary<string, string?> { ["DATABASE_URL"] = database };
        var backup = Path.Combine(_root, "pg.backup");
        var made = await RunAsync(cli, env, "backup", "--data", first, "--out", backup);
        made.ExitCode.ShouldBe(0, made.Stderr);
        made.Stdout.ShouldContain("the postgres database");
        await server.DisposeAsync();

        // Into the database it came from (it has tables): refused. Into a new, empty one: restored.
        var refused = await RunAsync(cli, env, "restore", "--data", second, backup);
        refused.ExitCode.ShouldNotBe(0);
        refused.Stderr.ShouldContain("already has tables");
        var empty = await postgres.CreateDatabaseAsync();
        var restored = await RunAsync(cli, new Dictionary<string, string?> { ["DATABASE_URL"] = empty }, "restore", "--data", second, backup);
        restored.ExitCode.ShouldBe(0, restored.Stderr);
        // A SQLite target cannot take it.
        (await RunAsync(cli, [], "restore", "--data", Path.Combine(_root, "third"), backup)).Stderr.ShouldContain("give DATABASE_URL");

        await using var again = await TestServer.StartAsync(postgres: empty, settings: AgentHelpers.Settings(), dataDirectory: second);
        using var anonymous = again.Client();
        var login = await AgentMergeTests.OkAsync<AuthResponse>(await anonymous.PostAsJsonAsync("/api/auth/login", new LoginRequest(owner.Auth.User.Email, TestServer.Password)), HttpStatusCode.OK);
        (await again.OutputAsync(login.AccessToken, agent.Id)).ShouldBe(history);
    }

    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(CliRunner cli, Dictionary<string, string?> environment, params string[] args)
    {
        using var process = cli.Start(args, environment: environment);
        var (stdout, stderr) = (process.StandardOutput.ReadToEndAsync(), process.StandardError.ReadToEndAsync());
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout, await stderr);
    }
}
