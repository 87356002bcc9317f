using System.Collections;
using Covibe.Server.Hosting;

namespace Covibe.Server.Tests;

/// <summary>The seeds' variables (the contract) reach the settings they name (fast unit test).</summary>
public sealed class SeedEnvironmentTests
{
    [Fact]
    public void Read_Seed003AndCovibesOwnVariables_MapOntoTheirSettings()
    {
        var read = SeedEnvironment.Read(new Hashtable
        {
            ["USE_DOCKER_CONTAINERS"] = "true",
            ["USE_DOCKER_AGENTS"] = "true",
            ["USE_DOCKER_PREVIEW"] = "true",
            ["DOCKER_HOST"] = "unix:///run/podman/podman.sock",
            ["AGENT_IMAGE"] = "registry.example.com/agent:1",
            ["CLAUDE_API_KEY"] = "sk-test",
            ["WORKSPACE_BASE"] = "/var/covibes/workspaces",
            ["COVIBE_SIGNUP_TOKEN"] = "token",
            ["ALLOWED_HOSTS"] = "covibe.example.com",
            ["UNRELATED"] = "x",
        }).ToDictionary(p => p.Key, p => p.Value);
        read.ShouldBe(new Dictionary<string, string?>
        {
            ["Covibe:Containers:Enabled"] = "true",
            ["Covibe:Containers:Agents"] = "true",
            ["Covibe:Containers:Preview"] = "true",
            ["Covibe:Containers:Host"] = "unix:///run/podman/podman.sock",
            ["Covibe:Containers:Image"] = "registry.example.com/agent:1",
            ["Covibe:Containers:ClaudeApiKey"] = "sk-test",
            ["Covibe:Agents:WorkspaceBase"] = "/var/covibes/workspaces",
            ["Covibe:Teams:SignupToken"] = "token",
            ["Covibe:AllowedHosts"] = "covibe.example.com",
        }, ignoreOrder: true);
    }
}
