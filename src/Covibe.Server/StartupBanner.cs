using Covibe.Server.Features.Containers;
using Covibe.Server.Data;
using Covibe.Server.Hosting;
using Covibe.Server.Http;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Covibe.Server;

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

        await output.WriteLineAsync($"Covibe {Hosting.ServerVersion.Value} is running ({storage}, {app.Environment.EnvironmentName}).");
        foreach (var address in addresses)
        {
            await output.WriteLineAsync($"  Listening on {address}");
        }
        await output.WriteLineAsync($"  Open {url} in a browser, or use the covibe command.");
        await output.WriteLineAsync($"  {await WhereCodeRunsAsync(app, cancellationToken)}");
        if (TeamNetworksLine(app) is { } networks)
        {
            await output.WriteLineAsync($"  {networks}");
        }
        var egress = app.Services.GetRequiredService<IOptions<Features.Egress.EgressOptions>>().Value;
        await output.WriteLineAsync(egress.Default == egress.Ceiling
            ? $"  Where teams' code may connect: {egress.Default} (Covibe:Egress:Default and Ceiling; a team owner may choose less: covibe egress set)."
            : $"  Where teams' code may connect: {egress.Default} by default, at most {egress.Ceiling} as a team owner chooses (covibe egress set; Covibe:Egress).");
        if (TeamLimitsLine(app) is { } limits)
        {
            await output.WriteLineAsync($"  {limits}");
        }
        var previews = app.Services.GetRequiredService<Features.Previews.PreviewUrls>();
        await output.WriteLineAsync($"  Team previews are served on origins of their own: {previews.Origin("{team}")} (PREVIEW_URL behind a proxy).");
        if (AllowedHosts.From(app.Configuration) is null && app.Configuration[AllowedHosts.Setting] is not "*")
        {
            await output.WriteLineAsync("  Listening on every address: set ALLOWED_HOSTS to this server's names, so that pages of other sites cannot reach it by DNS rebinding.");
        }
        var signup = app.Services.GetRequiredService<IOptions<Features.Teams.TeamsOptions>>().Value;
        if (teams == 0 && signup.Signup != Features.Teams.TeamsOptions.Closed)
        {
            await output.WriteLineAsync("  No team yet. Create the first one (you become its owner and get an invite code to share):");
            var token = signup.Signup != Features.Teams.TeamsOptions.Token ? ""
                : signup.SignupTokenPath is { } path ? $" --signup-token-file {path}" : " --signup-token-file FILE_WITH_COVIBE_SIGNUP_TOKEN";
            await output.WriteLineAsync($"    covibe team create --server {url} --name \"My team\" --user-name \"Your name\" --email you@example.com{token}");
            if (signup.Signup == Features.Teams.TeamsOptions.Token)
            {
                await output.WriteLineAsync(signup.SignupTokenPath is { } file
                    ? $"  Creating a team needs the operator's signup token, kept in {file} (readable by this server's user only)."
                    : "  Creating a team needs the operator's signup token (COVIBE_SIGNUP_TOKEN).");
            }
        }
        else
        {
            await output.WriteLineAsync($"  {teams} team(s). Members log in with: covibe login --server {url} --email you@example.com");
            await output.WriteLineAsync($"  Newcomers join with an invite code from a member: covibe login --server {url} --invite CODE --email ... --name ...");
        }
        await output.WriteLineAsync($"  Health: {url}/health   API description: {url}/openapi/v1.json   Protocol: docs/protocol.md");
        await output.WriteLineAsync("Press Ctrl+C to stop.");
    }

    /// <summary>Whom teams' containers can reach, when containers are in use here.</summary>
    private static string? TeamNetworksLine(WebApplication app)
    {
        var wall = app.Services.GetRequiredService<TeamNetworkWall>();
        var containers = app.Services.GetRequiredService<IOptions<ContainersOptions>>().Value;
        return !wall.Tried ? null
            : wall.Problem is null ? $"Each team's containers have a network of their own: no other team's, nor this machine, nor {(containers.PrivateNetworks ? "link-local" : "private or link-local")} addresses are reachable from there (Covibe:Containers:Network)."
            : $"Each team's containers have a network of their own, but this machine's firewall is not set ({wall.Problem}): this machine and cloud metadata are reachable from there (docs/configuration.md).";
    }

    /// <summary>What bounds each team's sandboxed programs on this machine, or why nothing does.</summary>
    private static string? TeamLimitsLine(WebApplication app)
    {
        if (!app.Services.GetRequiredService<IOptions<Features.Machines.IsolationOptions>>().Value.IsSandboxed)
        {
            return null;
        }
        var limits = app.Services.GetRequiredService<Features.Machines.SandboxLimits>();
        return limits.Groups is { Limits: var l } groups
            ? string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"Each team's sandboxed programs together: at most {l.MemoryBytes / (1024 * 1024)} MiB of memory, {l.Cpus:0.##} CPUs, {l.Processes} processes ({groups.Kind}; Covibe:Isolation:Team*).")
            : $"No limits per team: {limits.Why}. One team's runaway build or fork bomb can starve the others and this server (docs/configuration.md, Covibe:Isolation:TeamLimits).";
    }

    /// <summary>Where members' agents and terminals run, and whether that works right now.</summary>
    private static async Task<string> WhereCodeRunsAsync(WebApplication app, CancellationToken cancellationToken)
    {
        var isolation = app.Services.GetRequiredService<IOptions<Features.Machines.IsolationOptions>>().Value;
        var network = !isolation.IsSandboxed ? ""
            : app.Services.GetRequiredService<Execution.Local.HostSandbox>().IsolatesNetwork ? " with a network of its own (the internet, not this machine)"
            : !isolation.SandboxNetwork ? " with no network"
            : " sharing this machine's network (its loopback services are reachable from there; run as root for a network of their own)";
        var host = isolation.IsSandboxed ? "on this machine in a bubblewrap sandbox" + network
            : "on this machine WITHOUT a sandbox (Covibe:Isolation:HostExecution=unsandboxed): members can reach the server's files";
        var containers = app.Services.GetRequiredService<IOptions<Features.Containers.ContainersOptions>>().Value;
        if (!containers.ForAgents)
        {
            return $"Members' agents and terminals run {host}.";
        }
        var problem = await app.Services.GetRequiredService<Features.Containers.ContainerEngine>().ProblemAsync(cancellationToken);
        return problem is null
            ? $"Members' agents and terminals run in containers ({containers.Image} at {containers.EngineAddress})."
            : $"Containers are on, but: {problem} Until that is fixed, agents and terminals run {(containers.Fallback == "none" ? "nowhere (Covibe:Containers:Fallback=none)" : host)}.";
    }
}
