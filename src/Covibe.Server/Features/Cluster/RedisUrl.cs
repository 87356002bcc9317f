namespace Covibe.Server.Features.Cluster;

/// <summary>Seed 001's <c>REDIS_URL</c> (<c>redis://[user][:password@]host[:port][/db]</c>, or <c>rediss://</c> for TLS) as StackExchange.Redis options.</summary>
public static class RedisUrl
{
    public static StackExchange.Redis.ConfigurationOptions Parse(string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("redis" or "rediss") || string.IsNullOrEmpty(uri.Host))
        {
            throw new FormatException("REDIS_URL must look like redis://[:password@]host[:port][/db] (or rediss:// for TLS).");
        }
        var options = new StackExchange.Redis.ConfigurationOptions
        {
            // Nodes start and keep serving their own clients while Redis is away; the client reconnects by itself.
            AbortOnConnectFail = false,
            Ssl = uri.Scheme == "rediss",
            ConnectTimeout = 5000,
            ClientName = "covibe",
        };
        options.EndPoints.Add(uri.Host, uri.IsDefaultPort || uri.Port < 0 ? 6379 : uri.Port);
        if (uri.UserInfo.Length > 0)
        {
            var parts = uri.UserInfo.Split(':', 2);
            if (parts.Length == 2)
            {
                options.User = parts[0].Length > 0 ? Uri.UnescapeDataString(parts[0]) : null;
                options.Password = Uri.UnescapeDataString(parts[1]);
            }
            else
            {
                options.Password = Uri.UnescapeDataString(parts[0]);
            }
        }
        if (uri.AbsolutePath.Trim('/') is { Length: > 0 } db)
        {
            options.DefaultDatabase = int.TryParse(db, System.Globalization.CultureInfo.InvariantCulture, out var n) && n >= 0 ? n
                : throw new FormatException($"The database in REDIS_URL must be a number, not '{db}'.");
        }
        return options;
    }
}
