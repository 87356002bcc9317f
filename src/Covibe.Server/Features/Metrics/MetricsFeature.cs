using Covibe.Server.Hosting;
using Covibe.Server.Http;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace Covibe.Server.Features.Metrics;

/// <summary>
/// The server's metrics through OpenTelemetry: every feature's own meter (named <c>Covibe.*</c>, each beside the code
/// it counts), ASP.NET Core's requests and connections, outgoing HTTP, and the runtime and process; read by Prometheus at
/// <c>/metrics</c> with the operator's token, or pushed over OTLP. Nothing is loaded when neither is configured.
/// </summary>
public static class MetricsFeature
{
    /// <summary>The meters Covibe's features name theirs under (<c>Covibe.Agents</c>, <c>Covibe.Hub</c>, ...).</summary>
    public const string MeterPrefix = "Covibe.";

    public static IServiceCollection AddMetrics(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<MetricsOptions>().BindConfiguration(MetricsOptions.Section);
        var scrape = !string.IsNullOrEmpty(configuration[$"{MetricsOptions.Section}:Token"]);
        var otlp = !string.IsNullOrEmpty(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        if (scrape || otlp)
        {
            AddOpenTelemetry(services, scrape, otlp);
        }
        return services;
    }

    // Its own method, so that a server without a reader of its metrics never loads OpenTelemetry to compile AddMetrics.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void AddOpenTelemetry(IServiceCollection services, bool scrape, bool otlp)
    {
        services.AddHostedService<MetricsSources>();
        // Only this server's meters (made by its own IMeterFactory) and the process's: another server in the same process
        // (the tests run many) has meters of the same names, which would be counted as this one's.
        services.ConfigureOpenTelemetryMeterProvider((provider, builder) =>
        {
            var mine = provider.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
            builder.AddView(instrument => instrument.Meter.Scope is { } scope && scope != mine ? MetricStreamConfiguration.Drop : null);
        });
        services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("covibe", serviceVersion: ServerVersion.Value, serviceInstanceId: Environment.MachineName))
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(MeterPrefix + "*")
                    .AddAspNetCoreInstrumentation()
                    .AddHttpClientInstrumentation()
                    .AddRuntimeInstrumentation()
                    // Kestrel's connections (WebSockets among them, upgraded) and the process's CPU and memory.
                    .AddMeter("Microsoft.AspNetCore.Server.Kestrel", "System.Runtime");
                if (scrape)
                {
                    metrics.AddPrometheusExporter();
                }
                if (otlp)
                {
                    metrics.AddOtlpExporter();
                }
            });
    }

    /// <summary><c>GET /metrics</c> for Prometheus, when the operator set a scrape token; anyone else gets 401.</summary>
    public static IEndpointRouteBuilder MapMetrics(this IEndpointRouteBuilder app)
    {
        var options = app.ServiceProvider.GetRequiredService<Microsoft.Extensions.Options.IOptions<MetricsOptions>>().Value;
        if (string.IsNullOrEmpty(options.Token))
        {
            return app;
        }
        MapScrape(app, options.Token, app.ServiceProvider.GetRequiredService<ILogger<MetricsOptions>>());
        return app;
    }

    // Its own method, so that a server without a scrape token never loads the exporter to compile MapMetrics.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void MapScrape(IEndpointRouteBuilder app, string token, ILogger logger)
    {
        app.MapPrometheusScrapingEndpoint(MetricsOptions.Path, meterProvider: null, configureBranchedPipeline: branch => branch.Use(async (context, next) =>
        {
            var presented = Auth.BearerEvents.ReadBearer(context.Request.Headers.Authorization.ToString());
            if (!Tokens.FixedTimeEquals(presented, token))
            {
                MetricsLog.ScrapeRefused(logger, context.Connection.RemoteIpAddress?.ToString(), presented is null ? "no token" : "a wrong token");
                context.Response.Headers.WWWAuthenticate = "Bearer";
                await Problems.Unauthorized("unauthorized",
                    "The metrics are for the server's operator: send the scrape token (COVIBE_METRICS_TOKEN) as Authorization: Bearer.").ExecuteAsync(context);
                return;
            }
            await next(context);
        }), optionsName: null).AllowAnonymous();
    }
}

/// <summary>
/// Makes every feature's metrics at start, so their gauges are read from the first scrape: being given them is all it
/// takes (each source makes its meter and instruments as it is built).
/// </summary>
internal sealed class MetricsSources : IHostedService
{
    public MetricsSources(IEnumerable<IMetricsSource> sources)
    {
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
