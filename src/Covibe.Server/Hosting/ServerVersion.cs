using System.Reflection;

namespace Covibe.Server.Hosting;

/// <summary>This build's version, as <c>/health</c>, the start-up banner and the metrics' resource say it.</summary>
public static class ServerVersion
{
    public static readonly string Value =
        typeof(ServerVersion).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";
}
