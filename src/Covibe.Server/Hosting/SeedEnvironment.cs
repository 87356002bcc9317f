using System.Collections;

namespace Covibe.Server.Hosting;

/// <summary>
/// The seeds configure the server through plain environment variables (JWT_SECRET,
/// ALLOWED_ORIGINS, ...). They are part of the contract, so each maps onto its option here;
/// the <c>Covibe__Section__Name</c> forms and command-line flags work too and win over these.
/// </summary>
public static class SeedEnvironment
{
    public static readonly IReadOnlyDictionary<string, string> Map = new Dictionary<string, string>
    {
        ["COVIBE_DATA"] = "Covibe:DataDirectory",
        ["DATABASE_URL"] = "Covibe:Database:ConnectionString",
        ["REDIS_URL"] = "Covibe:Cluster:RedisUrl",
        ["NODE_URL"] = "Covibe:Cluster:NodeUrl",
        ["JWT_SECRET"] = "Covibe:Auth:JwtSecret",
        ["ALLOWED_ORIGINS"] = "Covibe:Hub:AllowedOrigins",
        ["ALLOWED_HOSTS"] = "Covibe:AllowedHosts",
        ["TRUSTED_PROXIES"] = "Covibe:TrustedProxies",
        ["USE_MOCK_AGENTS"] = "Covibe:Agents:UseMockAgents",
        ["ENCRYPTION_KEY"] = "Covibe:Secrets:EncryptionKey",
        ["VM_INSTANCES_FILE"] = "Covibe:Vms:InstancesFile",
        ["ENCRYPTION_KEYS_PREVIOUS"] = "Covibe:Secrets:PreviousKeys",
        ["WORKSPACE_BASE"] = "Covibe:Agents:WorkspaceBase",
        ["MAX_SESSIONS"] = "Covibe:Terminals:MaxSessions",
        ["SESSION_TIMEOUT"] = "Covibe:Terminals:SessionTimeoutSeconds",
        ["MAX_COMMAND_LENGTH"] = "Covibe:Terminals:MaxCommandLength",
        ["COVIBE_SIGNUP_TOKEN"] = "Covibe:Teams:SignupToken",
        ["COVIBE_METRICS_TOKEN"] = "Covibe:Metrics:Token",
        ["USE_DOCKER_CONTAINERS"] = "Covibe:Containers:Enabled",
        ["USE_DOCKER_AGENTS"] = "Covibe:Containers:Agents",
        ["USE_DOCKER_PREVIEW"] = "Covibe:Containers:Preview",
        ["DOCKER_HOST"] = "Covibe:Containers:Host",
        ["AGENT_IMAGE"] = "Covibe:Containers:Image",
        ["CLAUDE_API_KEY"] = "Covibe:Containers:ClaudeApiKey",
        ["PREVIEW_URL"] = "Covibe:Preview:PublicUrl",
        ["PUBLIC_URL"] = "Covibe:PublicUrl",
    };

    public static IEnumerable<KeyValuePair<string, string?>> Read(IDictionary environment)
    {
        foreach (var (variable, key) in Map)
        {
            if (environment[variable] is string value && value.Length > 0)
            {
                yield return new(key, value);
            }
        }
    }
}
