using Covibe.Server.Data;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Hosting;

/// <summary>What <c>covibe serve</c> prints once listening: where it is, and how to get in.</summary>
public static class StartupBanner
{
    public static async Task WriteAsync(WebApplication app, TextWriter output, CancellationToken cancellationToken)
    {
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.ToList() ?? [];
        var url = addresses.FirstOrDefault() ?? "http://localhost:5000";
        var dataDirectory = app.Services.GetRequiredService<IOptions<ServerOptions>>().Value.DataDirectory;
        await using var db = await app.Services.GetRequiredService<IDbContextFactory<CovibeDb>>().CreateDbContextAsync(cancellationToken);
        var teams = await db.Teams.CountAsync(cancellationToken);
        var storage = db.ProviderName() == "postgres" ? "PostgreSQL" : $"SQLite in {dataDirectory}";

        await output.WriteLineAsync($"Covibe {Features.Health.HealthApi.Version} is running ({storage}, {app.Environment.EnvironmentName}).");
        foreach (var address in addresses)
        {
            await output.WriteLineAsync($"  Listening on {address}");
        }
        await output.WriteLineAsync($"  Open {url} in a browser, or use the covibe command.");
        if (teams == 0)
        {
            await output.WriteLineAsync("  No team yet. Create the first one (you become its owner and get an invite code to share):");
            await output.WriteLineAsync($"    covibe team create --server {url} --name \"My team\" --user-name \"Your name\" --email you@example.com");
        }
        else
        {
            await output.WriteLineAsync($"  {teams} team(s). Members log in with: covibe login --server {url} --email you@example.com");
            await output.WriteLineAsync($"  Newcomers join with an invite code from a member: covibe login --server {url} --invite CODE --email ... --name ...");
        }
        await output.WriteLineAsync($"  Health: {url}/health   API description: {url}/openapi/v1.json   Protocol: docs/protocol.md");
        await output.WriteLineAsync("Press Ctrl+C to stop.");
    }
}
