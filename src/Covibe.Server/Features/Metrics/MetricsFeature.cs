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
        if (!scrape && !otlp)
        {
            return services;
        }
        services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("covibe", serviceVersion: Features.Health.HealthApi.Version, serviceInstanceId: Environment.MachineName))
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
        return services;
    }

    /// <summary><c>GET /metrics</c> for Prometheus, when the operator set a scrape token; anyone else gets 401.</summary>
    public static IEndpointRouteBuilder MapMetrics(this IEndpointRouteBuilder app)
    {
        var options = app.ServiceProvider.GetRequiredService<Microsoft.Extensions.Options.IOptions<MetricsOptions>>().Value;
        if (string.IsNullOrEmpty(options.Token))
        {
            return app;
        }
        var logger = app.ServiceProvider.GetRequiredService<ILogger<MetricsOptions>>();
        app.MapPrometheusScrapingEndpoint(MetricsOptions.Path, meterProvider: null, configureBranchedPipeline: branch => branch.Use(async (context, next) =>
        {
            var presented = Auth.BearerAuthenticationHandler.ReadBearer(context.Request.Headers.Authorization.ToString());
            if (!Tokens.FixedTimeEquals(presented, options.Token))
            {
                MetricsLog.ScrapeRefused(logger, context.Connection.RemoteIpAddress?.ToString(), presented is null ? "no token" : "a wrong token");
                context.Response.Headers.WWWAuthenticate = "Bearer";
                await Problems.Unauthorized("unauthorized",
                    "The metrics are for the server's operator: send the scrape token (COVIBE_METRICS_TOKEN) as Authorization: Bearer.").ExecuteAsync(context);
                return;
            }
            await next(context);
        }), optionsName: null).AllowAnonymous();
        return app;
    }
}
