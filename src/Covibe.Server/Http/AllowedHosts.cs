using Covibe.Server.Http;

namespace Covibe.Server.Http;

/// <summary>
/// <c>Covibe:AllowedHosts</c> (<c>ALLOWED_HOSTS</c>, comma-separated): the names this server answers to.
/// A page on another site whose name is made to resolve to this server (DNS rebinding) sends its own
/// name as Host, and would otherwise pass the same-origin checks of the hub, the terminals and the
/// API. Always localhost, 127.0.0.1 and [::1]; unset, also the names in <c>--urls</c>; a server listening on
/// every address cannot know its names, answers any, and its banner says to set this.
/// </summary>
public static class AllowedHosts
{
    public const string Setting = "Covibe:AllowedHosts";

    /// <summary>The allowed names (lower case, no port), or null for any.</summary>
    public static HashSet<string>? From(IConfiguration configuration)
    {
        // Loopback names always: a page elsewhere cannot make a browser send them as Host.
        var allowed = new HashSet<string>(StringComparer.Ordinal) { "localhost", "127.0.0.1", "[::1]" };
        // The other nodes reach this one by its node address (their clients' terminals here).
        if (Uri.TryCreate(configuration["Covibe:Cluster:NodeUrl"], UriKind.Absolute, out var node))
        {
            allowed.Add(node.Host.ToLowerInvariant());
        }
        if (configuration[Setting] is { Length: > 0 } configured)
        {
            var names = configured.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(n => n.ToLowerInvariant()).ToList();
            allowed.UnionWith(names);
            return names.Contains("*") ? null : allowed;
        }
        foreach (var url in (configuration["urls"] ?? "http://127.0.0.1:5180").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var host = Uri.TryCreate(url.Replace("://*", "://any", StringComparison.Ordinal).Replace("://+", "://any", StringComparison.Ordinal), UriKind.Absolute, out var uri) ? uri.Host : "any";
            if (host is "any" or "0.0.0.0" or "[::]")
            {
                return null;
            }
            allowed.Add(host.ToLowerInvariant());
        }
        return allowed;
    }

    /// <summary>Refuses requests for any other name with a ProblemDetails saying which names are served.</summary>
    public static WebApplication UseAllowedHosts(this WebApplication app)
    {
        if (From(app.Configuration) is not { } allowed)
        {
            return app;
        }
        var served = string.Join(", ", allowed.Order(StringComparer.Ordinal));
        app.Use(async (context, next) =>
        {
            if (!allowed.Contains(context.Request.Host.Host.ToLowerInvariant()))
            {
                await Problems.BadRequest("host-not-allowed", "Unknown host",
                    $"This server answers to {served}. If this is one of its names, the operator adds it to ALLOWED_HOSTS (Covibe:AllowedHosts).")
                    .ExecuteAsync(context);
                return;
            }
            await next(context);
        });
        return app;
    }
}
