
namespace Covibe.Server.Features.Cluster;

/// <summary>What this node's link to the other nodes is like, for <c>/health</c>: null alone, else <c>connected</c> or <c>down</c>.</summary>
public interface IClusterLink
{
    string? State { get; }
}

public sealed class NoClusterLink : IClusterLink
{
    public string? State => null;
}

public static class ClusterFeature
{
    /// <summary>With <c>REDIS_URL</c>, team events go to every node through Redis; without it, one node and nothing changes.</summary>
    /// <summary>Whether this node is one of several (<c>REDIS_URL</c> set): the features then add their Redis halves.</summary>
    public static bool AcrossNodes(IConfiguration configuration) => !string.IsNullOrWhiteSpace(configuration[$"{ClusterOptions.Section}:RedisUrl"]);

    public static IServiceCollection AddCluster(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton<ThisNode>();
        services.AddSingleton<Leases>();
        services.AddSingleton<IClusterSignals, LocalClusterSignals>();
        services.AddSingleton<IClusterLink, NoClusterLink>();
        services.AddOptions<ClusterOptions>().BindConfiguration(ClusterOptions.Section).ValidateDataAnnotations()
            .Validate(o => o.RedisUrl is null || TryParse(o.RedisUrl), "Covibe:Cluster:RedisUrl (REDIS_URL) must look like redis://[:password@]host[:port][/db].")
            .Validate(o => string.IsNullOrEmpty(o.NodeUrl) || (Uri.TryCreate(o.NodeUrl, UriKind.Absolute, out var u) && u.Scheme is "http" or "https"),
                "Covibe:Cluster:NodeUrl (NODE_URL) must be this node's http:// or https:// address as the other nodes reach it, e.g. http://10.0.0.11:5180.")
            .ValidateOnStart();
        if (AcrossNodes(configuration))
        {
            services.AddSingleton<RedisBus>();
            services.AddHostedService(sp => sp.GetRequiredService<RedisBus>());
            services.AddSingleton<IClusterLink>(sp => sp.GetRequiredService<RedisBus>());
            services.AddSingleton<NodeUrl>();
            services.AddSingleton<RedisClusterSignals>();
            services.AddSingleton<IClusterSignals>(sp => sp.GetRequiredService<RedisClusterSignals>());
            services.AddHostedService(sp => sp.GetRequiredService<RedisClusterSignals>());
        }
        return services;
    }

    private static bool TryParse(string url)
    {
        try
        {
            RedisUrl.Parse(url);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }
}
