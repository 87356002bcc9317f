using System.Net;
using System.Net.Http.Json;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Hosting;
using Covibe.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Tests;

/// <summary>Configuration, first run and the data directory.</summary>
public sealed class StartupTests
{
    [Theory]
    [InlineData(null)]
    [InlineData("too-short")]
    public async Task Start_OutsideDevelopmentWithoutAStrongJwtSecret_FailsNamingTheSetting(string? secret)
    {
        var data = TempDirectory();
        var args = new List<string> { "--urls=http://127.0.0.1:0", "--environment=Production", $"--Covibe:DataDirectory={data}", $"--Covibe:Secrets:EncryptionKey={TestServer.EncryptionKey}" };
        if (secret is not null)
        {
            args.Add($"--Covibe:Auth:JwtSecret={secret}");
        }
        await using (var app = CovibeServer.Build([.. args], b => b.Logging.ClearProviders()))
        {
            var error = await RefusedAsync(app);
            error.Message.ShouldContain("JWT_SECRET");
            error.Message.ShouldContain("--dev");
        }
        Delete(data);
    }

    [Fact]
    public async Task Start_OutsideDevelopmentWithoutEncryptionKey_FailsNamingTheSetting()
    {
        // Start-up writes the data directory (the signup token among it) before it fails: it goes with the test.
        var data = TempDirectory();
        try
        {
            await using var app = CovibeServer.Build(
                ["--urls=http://127.0.0.1:0", "--environment=Production", $"--Covibe:DataDirectory={data}", $"--Covibe:Auth:JwtSecret={TestServer.JwtSecret}"],
                b => b.Logging.ClearProviders());
            var error = await RefusedAsync(app);
            error.Message.ShouldContain("ENCRYPTION_KEY");
        }
        finally
        {
            Delete(data);
        }
    }

    [Fact]
    public async Task Start_WithUnknownDatabaseProvider_FailsNamingTheSetting()
    {
        // Start-up writes the data directory (the signup token among it) before it fails: it goes with the test.
        var data = TempDirectory();
        try
        {
            await using var app = CovibeServer.Build(
                ["--urls=http://127.0.0.1:0", $"--Covibe:DataDirectory={data}", $"--Covibe:Auth:JwtSecret={TestServer.JwtSecret}", $"--Covibe:Secrets:EncryptionKey={TestServer.EncryptionKey}", "--Covibe:Database:Provider=oracle"],
                b => b.Logging.ClearProviders());
            var error = await RefusedAsync(app);
            error.Message.ShouldContain("Covibe:Database:Provider");
        }
        finally
        {
            Delete(data);
        }
    }

    [Fact]
    public async Task CreateTeam_WhenTheServerDisallowsIt_IsForbidden()
    {
        await using var closed = await TestServer.StartAsync(settings: new Dictionary<string, string> { ["Covibe:Teams:AllowTeamCreation"] = "false" });
        using var client = closed.Client();
        using var reply = await client.PostAsJsonAsync("/api/team/create", new CreateTeamRequest("T", "U", "u@example.com", TestServer.Password));
        (await reply.ShouldBeProblemAsync(HttpStatusCode.Forbidden, "forbidden")).GetProperty("detail").GetString()!.ShouldContain("invite code");
    }

    [Fact]
    public async Task Development_GeneratesAPrivateJwtSecretOnce_AndTokensSurviveARestart()
    {
        var data = TempDirectory();
        string accessToken;
        await using (var first = await StartDevAsync(data))
        {
            accessToken = (await first.CreateTeamAsync()).Auth.AccessToken;
        }
        var secretFile = Path.Combine(data, "jwt-secret");
        File.GetUnixFileMode(secretFile).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite);
        (await File.ReadAllTextAsync(secretFile)).Trim().Length.ShouldBeGreaterThanOrEqualTo(32);
        File.GetUnixFileMode(data).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        await using (var second = await StartDevAsync(data))
        {
            using var client = second.Client(accessToken);
            (await client.GetAsync("/api/auth/me")).StatusCode.ShouldBe(HttpStatusCode.OK);
        }
        Delete(data);
    }

    [Fact]
    public void SeedEnvironment_MapsTheSeedsVariablesOntoOptions()
    {
        var mapped = SeedEnvironment.Read(new Dictionary<string, string>
        {
            ["JWT_SECRET"] = "s",
            ["ALLOWED_ORIGINS"] = "http://localhost:3001",
            ["COVIBE_DATA"] = "/var/lib/covibe",
            ["DATABASE_URL"] = "postgresql://u:p@db/covibe",
            ["UNRELATED"] = "x",
        }).Select(kv => $"{kv.Key}={kv.Value}");
        mapped.ShouldBe(
        [
            "Covibe:Auth:JwtSecret=s",
            "Covibe:Hub:AllowedOrigins=http://localhost:3001",
            "Covibe:DataDirectory=/var/lib/covibe",
            "Covibe:Database:ConnectionString=postgresql://u:p@db/covibe",
        ], ignoreOrder: true);
    }

    [Fact]
    public void DatabaseUrl_InPrismaForm_BecomesANpgsqlConnectionString()
    {
        var options = new DatabaseOptions { ConnectionString = "postgresql://covibe:p%40ss@db.internal:6543/team_db" };
        options.IsPostgres.ShouldBeTrue();
        var cs = new Npgsql.NpgsqlConnectionStringBuilder(options.ResolveConnectionString("/unused"));
        (cs.Host, cs.Port, cs.Database, cs.Username, cs.Password).ShouldBe(("db.internal", 6543, "team_db", "covibe", "p@ss"));
        new DatabaseOptions().ResolveConnectionString("/data").ShouldBe("Data Source=/data/covibe.db");
    }

    private static Task<TestServer> StartDevAsync(string data) =>
        TestServer.StartAsync(dataDirectory: data, settings: new Dictionary<string, string> { ["environment"] = "Development", ["Covibe:Auth:JwtSecret"] = "" });

    internal static string TempDirectory() => Path.Combine(Path.GetTempPath(), "covibe-test-" + Guid.NewGuid().ToString("N")[..10]);

    /// <summary>Deletes a test's directory, trying again for a moment while something that is ending (a wrapper, a clone in a box) still writes there.</summary>
    internal static void Delete(string directory)
    {
        for (var attempt = 0; Directory.Exists(directory); attempt++)
        {
            try
            {
                Directory.Delete(directory, recursive: true);
            }
            catch (IOException) when (attempt < 30)
            {
                Thread.Sleep(100);
            }
        }
    }

    /// <summary>Start-up's refusal; any other failure fails the test with its whole stack, so a surprise is readable in CI's log.</summary>
    private static async Task<OptionsValidationException> RefusedAsync(WebApplication app)
    {
        try
        {
            await CovibeServer.StartAsync(app, CancellationToken.None);
        }
        catch (OptionsValidationException refused)
        {
            return refused;
        }
        catch (Exception other)
        {
            throw new Xunit.Sdk.XunitException($"Start-up should refuse the settings, but failed otherwise: {other}");
        }
        throw new Xunit.Sdk.XunitException("Start-up should refuse the settings, but started.");
    }
}

/// <summary>The migrations (hand-written before dotnet-ef, then generated per provider): they match the model, and an older database upgrades in place.</summary>
public abstract class MigrationTests
{
    protected abstract Task<string?> NewDatabaseAsync();

    [Fact]
    public async Task DatabaseFromFirstMigration_UpgradesOnStart_KeepingItsData()
    {
        var data = StartupTests.TempDirectory();
        var connection = await NewDatabaseAsync();
        var options = new DbContextOptionsBuilder<CovibeDb>();
        if (connection is null)
        {
            Directory.CreateDirectory(data);
        }
        DatabaseSetup.Use(options, connection is not null, connection ?? $"Data Source={Path.Combine(data, "covibe.db")}");

        // A database as the first release left it: only the Initial migration, with a team, a member and a message.
        var hasher = new Features.Auth.PasswordHasher(Options.Create(new Features.Auth.AuthOptions { PasswordIterations = 100_000 }));
        await using (var old = new CovibeDb(options.Options))
        {
            await old.GetInfrastructure().GetRequiredService<IMigrator>().MigrateAsync("20261122000100_Initial");
            (await old.Database.GetAppliedMigrationsAsync()).ShouldBe(["20261122000100_Initial"]);
            await old.Database.ExecuteSqlAsync($"INSERT INTO teams (id, name, owner_id, created_at) VALUES ('t1', 'Old team', 'u1', {DateTime.UnixEpoch})");
            var hash = hasher.Hash(TestServer.Password);
            await old.Database.ExecuteSqlAsync($"INSERT INTO users (id, team_id, email, name, password_hash, created_at) VALUES ('u1', 't1', 'old@example.com', 'Olga', {hash}, {DateTime.UnixEpoch})");
            await old.Database.ExecuteSqlAsync($"INSERT INTO messages (team_id, user_id, content, timestamp) VALUES ('t1', 'u1', 'written before the upgrade', {DateTime.UnixEpoch})");
        }

        await using var server = await TestServer.StartAsync(postgres: connection, dataDirectory: connection is null ? data : null);
        using var anon = server.Client();
        using var login = await anon.PostAsJsonAsync("/api/auth/login", new LoginRequest("old@example.com", TestServer.Password));
        login.StatusCode.ShouldBe(HttpStatusCode.OK);
        var auth = (await login.Content.ReadFromJsonAsync<AuthResponse>())!;
        auth.Team.Name.ShouldBe("Old team");
        using var client = server.Client(auth.AccessToken);
        (await client.GetFromJsonAsync<ChatHistoryResponse>("/api/chat/history"))!.Messages.Single().Message.ShouldBe("written before the upgrade");
        (await client.PostAsJsonAsync("/api/team/invite", new CreateInviteRequest())).StatusCode.ShouldBe(HttpStatusCode.Created);
        await server.DisposeAsync();
        StartupTests.Delete(data);
    }

    [Fact]
    public async Task MigratedSchema_HoldsEveryMappedColumn()
    {
        var connection = await NewDatabaseAsync();
        await using var server = await TestServer.StartAsync(postgres: connection);
        await using var db = await server.App.Services.GetRequiredService<IDbContextFactory<CovibeDb>>().CreateDbContextAsync();
        (await db.Database.GetPendingMigrationsAsync()).ShouldBeEmpty();
        // Selecting whole entities names every mapped column: a column missing from a migration fails here.
        await db.Teams.Take(1).ToListAsync();
        await db.Users.Take(1).ToListAsync();
        await db.Invites.Take(1).ToListAsync();
        await db.Sessions.Take(1).ToListAsync();
        await db.RefreshTokens.Take(1).ToListAsync();
        await db.Messages.Take(1).ToListAsync();
        await db.Agents.Take(1).ToListAsync();
        await db.Vms.Take(1).ToListAsync();
        await db.VmAssignments.Take(1).ToListAsync();
        await db.ContainerEnvironments.Take(1).ToListAsync();
        await db.Previews.Take(1).ToListAsync();
        await db.PreviewDeploys.Take(1).ToListAsync();
        await db.PreviewDeliveries.Take(1).ToListAsync();
        await db.PreviewGrants.Take(1).ToListAsync();
        await db.VmAudit.Take(1).ToListAsync();
        await db.Repositories.Take(1).ToListAsync();
        await db.AgentPermissions.Take(1).ToListAsync();
        await db.AgentControllers.Take(1).ToListAsync();
        await db.AgentActions.Take(1).ToListAsync();
        await db.PushSubscriptions.Take(1).ToListAsync();
        await db.PushKeys.Take(1).ToListAsync();
        await db.Budgets.Take(1).ToListAsync();
        await db.BudgetAlerts.Take(1).ToListAsync();
        var tables = db.Model.GetEntityTypes().Select(e => e.GetTableName()).Order().ToArray();
        tables.ShouldBe(["agent_actions", "agent_controllers", "agent_permissions", "agents", "box_pools", "boxes", "budget_alerts", "budgets", "container_environments", "invites", "leases", "messages", "preview_deliveries", "preview_deploys", "preview_grants", "previews", "push_keys", "push_subscriptions", "refresh_tokens", "sessions", "team_repositories", "teams", "users", "vm_assignments", "vm_audit", "vms"]);
    }
}

public sealed class SqliteMigrationTests : MigrationTests
{
    protected override Task<string?> NewDatabaseAsync() => Task.FromResult<string?>(null);
}

[Collection(PostgresGroup.Name)]
public sealed class PostgresMigrationTests(PostgresServer postgres) : MigrationTests
{
    protected override async Task<string?> NewDatabaseAsync() => await postgres.CreateDatabaseAsync();
}
