using Covibe.Server.Hosting;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Cluster;

/// <summary>
/// This server process as the other nodes know it: the holder of its leases in the database and the sender of its
/// messages on Redis. The id is kept in the data directory, so a restarted node recognises the leases it held before it
/// stopped and takes its work (agents, boxes) up at once instead of waiting for them to expire. Every node needs a data
/// directory of its own.
/// </summary>
public sealed class ThisNode(IOptions<ServerOptions> server)
{
    private readonly Lazy<string> _id = new(() => Load(server.Value.DataDirectory));

    public string Id => _id.Value;

    private static string Load(string dataDirectory)
    {
        Directory.CreateDirectory(dataDirectory);
        var path = Path.Combine(dataDirectory, "node-id");
        // Before 2026-11-27 the id was kept with the boxes; a node keeps the id it had.
        foreach (var candidate in new[] { path, Path.Combine(dataDirectory, "boxes", ".node-id") })
        {
            if (File.Exists(candidate) && File.ReadAllText(candidate).Trim() is { Length: > 0 } existing)
            {
                if (candidate != path)
                {
                    File.WriteAllText(path, existing);
                }
                return existing;
            }
        }
        var id = $"{Environment.MachineName}-{Guid.NewGuid():N}";
        File.WriteAllText(path, id);
        return id;
    }
}
