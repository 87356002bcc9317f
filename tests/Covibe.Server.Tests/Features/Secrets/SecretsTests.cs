using System.Net;
using System.Net.Http.Json;
using System.Text;
using Covibe.Protocol;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>Passwords, tokens and invite codes never reach logs, error bodies or the database in plaintext.</summary>
public sealed class SecretsTests
{
    [Fact]
    public async Task AuthFlows_NeverWriteSecretsToLogsOrTheDatabase()
    {
        var logs = new LogSink();
        var data = StartupTests.TempDirectory();
        var secrets = new List<string> { TestServer.Password, TestServer.JwtSecret };
        await using (var server = await TestServer.StartAsync(logs: logs, dataDirectory: data))
        {
            var (owner, member) = await server.CreateTeamWithMemberAsync();
            secrets.AddRange([owner.Invite.InviteCode, owner.Auth.AccessToken, owner.Auth.RefreshToken, member.AccessToken, member.RefreshToken]);
            using var anon = server.Client();
            using var refreshed = await anon.PostAsJsonAsync("/api/auth/refresh", new RefreshRequest(member.RefreshToken));
            var rotated = (await refreshed.Content.ReadFromJsonAsync<AuthResponse>())!;
            secrets.Add(rotated.RefreshToken);
            // Failures log too; they must not log what was tried.
            using var wrong = await anon.PostAsJsonAsync("/api/auth/login", new LoginRequest(owner.Auth.User.Email, "wrong-but-secret-password"));
            secrets.Add("wrong-but-secret-password");
            using var replay = await anon.PostAsJsonAsync("/api/auth/refresh", new RefreshRequest(member.RefreshToken));
            using var badInvite = await anon.PostAsJsonAsync("/api/auth/login", new LoginRequest("x@example.com", "another-secret-pw", "ZZZZ-ZZZZ-ZZZZ-ZZZZ", "X"));
            secrets.AddRange(["another-secret-pw", "ZZZZ-ZZZZ-ZZZZ-ZZZZ"]);
            foreach (var reply in new[] { wrong, replay, badInvite })
            {
                var body = await reply.Content.ReadAsStringAsync();
                secrets.ShouldAllBe(secret => !body.Contains(secret, StringComparison.Ordinal));
            }
            await using var hub = await server.ConnectAsync();
            await hub.JoinAsync(owner.Auth.Team.Id, owner.Auth.AccessToken);
        }

        logs.Lines.ShouldNotBeEmpty();
        foreach (var line in logs.Lines)
        {
            secrets.ShouldAllBe(secret => !line.Contains(secret, StringComparison.Ordinal), line);
        }
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        foreach (var file in Directory.GetFiles(data).Where(f => Path.GetFileName(f).StartsWith("covibe.db", StringComparison.Ordinal)))
        {
            var bytes = Encoding.Latin1.GetString(await File.ReadAllBytesAsync(file));
            secrets.ShouldAllBe(secret => !bytes.Contains(secret, StringComparison.Ordinal), file);
        }
        StartupTests.Delete(data);
    }
}
