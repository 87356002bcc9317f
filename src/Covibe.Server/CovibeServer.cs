using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Agents;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Backups;
using Covibe.Server.Features.Boxes;
using Covibe.Server.Features.Changes;
using Covibe.Server.Features.Chat;
using Covibe.Server.Features.Containers;
using Covibe.Server.Features.Egress;
using Covibe.Server.Features.Cluster;
using Covibe.Server.Features.Health;
using Covibe.Server.Features.Hub;
using Covibe.Server.Features.Machines;
using Covibe.Server.Features.Metrics;
using Covibe.Server.Features.Git;
using Covibe.Server.Features.Previews;
using Covibe.Server.Features.Push;
using Covibe.Server.Features.Repositories;
using Covibe.Server.Features.Runners;
using Covibe.Server.Features.Secrets;
using Covibe.Server.Features.Vms;
using Covibe.Server.Features.Teams;
using Covibe.Server.Features.Terminals;
using Covibe.Server.Hosting;
using Covibe.Server.Http;

namespace Covibe.Server;

/// <summary>The coordination server, as <c>covibe serve</c> and the tests start it.</summary>
public static class CovibeServer
{
    /// <summary>
    /// Builds the server; <paramref name="args"/> are ASP.NET configuration arguments (<c>--urls</c>,
    /// <c>--Covibe:DataDirectory=...</c>). <paramref name="configure"/> runs after Covibe's own
    /// registrations, so it can replace them (tests swap the clock).
    /// </summary>
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        // Settings come from the environment and flags; appsettings files are read once, not watched (a watch costs an
        // inotify instance, of which a user has 128 by default).
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = ["--hostBuilder:reloadConfigOnChange=false", .. args] });
        // Quiet framework defaults, lowest priority: appsettings, env and flags override them.
        builder.Configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationSource
        {
            InitialData = new Dictionary<string, string?>
            {
                ["Logging:LogLevel:Default"] = "Information",
                ["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning",
                ["Logging:LogLevel:Microsoft.EntityFrameworkCore"] = "Warning",
                ["Logging:LogLevel:Microsoft.Hosting.Lifetime"] = "Warning",
            },
        });
        builder.Configuration.AddInMemoryCollection(SeedEnvironment.Read(Environment.GetEnvironmentVariables()));
        builder.Configuration.AddCommandLine(args);
        builder.Logging.AddServerLogs();

        var services = builder.Services;
        services.AddOptions<ServerOptions>().BindConfiguration(ServerOptions.Section)
            .PostConfigure(o => o.DataDirectory = string.IsNullOrWhiteSpace(o.DataDirectory) ? ServerOptions.DefaultDataDirectory() : Path.GetFullPath(o.DataDirectory));
        services.AddSingleton(TimeProvider.System);
        services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(0, CovibeJsonContext.Default));
        services.AddProblemDetails();
        services.AddExceptionHandler<ErrorHandling>();
        services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        services.AddOpenApi();
        services.AddTrustedProxies(builder.Configuration);

        services.AddCovibeDatabase();
        services.AddHealth();
        services.AddCovibeAuth();
        services.AddTeams();
        services.AddChat();
        services.AddHub();
        services.AddContainers();
        services.AddEgress();
        services.AddMachines();
        services.AddAgents();
        services.AddSecrets();
        services.AddPush();
        services.AddVms();
        services.AddRunners();
        services.AddServerTerminals();
        services.AddGit();
        services.AddRepositories();
        services.AddChanges();
        services.AddPreviews();
        services.AddBoxes();
        services.AddBackups();
        services.AddMetrics(builder.Configuration);
        // Last: with REDIS_URL, the Redis implementations replace the one-node seams (team events, agent output, control).
        services.AddCluster(builder.Configuration);
        if (ClusterFeature.AcrossNodes(builder.Configuration))
        {
            services.AddHubAcrossNodes();
            services.AddAuthAcrossNodes();
            services.AddAgentsAcrossNodes();
            services.AddRateLimitsAcrossNodes();
            services.AddTerminalsAcrossNodes();
        }
        configure?.Invoke(builder);

        var app = builder.Build();
        app.UseServerLogs();
        app.UseTrustedProxies();
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseAllowedHosts();
        app.UseWebSockets();
        app.UseWebClient();
        // The hub authenticates its own connections (bearer header or join_team) and keeps only the
        // member's ids: the middleware would hold the token's principal for the connection's hours.
        // The metrics scrape carries the operator's token, not a member's.
        app.UseWhen(context => context.Request.Path != Features.Hub.HubEndpoint.Path
            && context.Request.Path != MetricsOptions.Path
            && !context.Request.Path.StartsWithSegments(Features.Hub.SocketIo.SocketIoEndpoint.Path.TrimEnd('/')), branch => branch.UseAuthentication());
        app.UseAuthorization();

        app.MapOpenApi();
        app.MapHealthApi();
        app.MapMetrics();
        app.MapAuthApi();
        app.MapTeamsApi();
        app.MapChatApi();
        app.MapAgentsApi();
        app.MapPushApi();
        app.MapVmsApi();
        app.MapRunnersApi();
        app.MapEnvironmentApi();
        app.MapEgressApi();
        app.MapRepositoriesApi();
        app.MapChangesApi();
        app.MapHub();
        app.MapServerTerminals();
        app.MapPreviewsApi();
        app.MapBoxesApi();
        return app;
    }

    /// <summary>Applies migrations, then starts listening.</summary>
    public static async Task StartAsync(WebApplication app, CancellationToken cancellationToken)
    {
        // Every setting is checked before anything else happens, so one start reports every mistake.
        app.Services.GetService<Microsoft.Extensions.Options.IStartupValidator>()?.Validate();
        ServerLogs.NameTheNode(app);
        await app.Services.MigrateDatabaseAsync(cancellationToken);
        await app.Services.GetRequiredService<SealedSecrets>().CheckAsync(cancellationToken); // a stored secret sealed with a key this server lacks stops start-up here
        _ = app.Services.GetRequiredService<VmPool>(); // reads the pool file: a bad one stops start-up here
        await app.Services.GetRequiredService<PoolService>().LoadFileAsync(cancellationToken); // the operator's box pools, likewise
        await app.StartAsync(cancellationToken);
    }
}
