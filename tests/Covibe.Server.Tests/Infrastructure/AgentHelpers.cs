using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Covibe.Protocol;

namespace Covibe.Server.Tests.Infrastructure;

/// <summary>Agent types and helpers shared by the agent tests.</summary>
public static class AgentHelpers
{
    /// <summary>Where tests keep git repositories for agents to clone: shown read-only to the sandbox (Covibe:Isolation:SandboxReadOnlyPaths).</summary>
    public static readonly string RepositoriesRoot = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "covibe-test-repositories")).FullName;

    /// <summary>
    /// Hands a repository to the sandbox's user (10001) when the tests run as root, as an operator's
    /// mirror of repositories would be: git refuses to read a repository another user owns.
    /// </summary>
    public static void GiveToSandboxUser(string path)
    {
        if (Environment.UserName != "root")
        {
            return;
        }
        using var chown = System.Diagnostics.Process.Start("chown", ["-R", "10001:10001", path])!;
        chown.WaitForExit();
        chown.ExitCode.ShouldBe(0);
    }

    /// <summary>Processes on this machine whose environment says they are the agent's (COVIBE_AGENT_ID).</summary>
    public static List<int> ProcessesOf(string agentId)
    {
        var marker = System.Text.Encoding.UTF8.GetBytes($"COVIBE_AGENT_ID={agentId}\0");
        var found = new List<int>();
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), out var pid))
            {
                continue;
            }
            try
            {
                if (File.ReadAllBytes(Path.Combine(directory, "environ")).AsSpan().IndexOf(marker) >= 0)
                {
                    found.Add(pid);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Gone meanwhile, or not ours to read.
            }
        }
        return found;
    }

    /// <summary>Settings for a server whose mock agent is quick, plus test agent types that are plain programs.</summary>
    public static Dictionary<string, string> Settings(int mockDelayMs = 20, int mockSteps = 6)
    {
        var settings = new Dictionary<string, string>
        {
            ["Covibe:Isolation:SandboxReadOnlyPaths:0"] = RepositoriesRoot,
            ["Covibe:Agents:MockDelayMilliseconds"] = mockDelayMs.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Covibe:Agents:MockSteps"] = mockSteps.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Covibe:Agents:KillGraceSeconds"] = "2",
            // Agents ask nothing unless a test is about approvals (AgentApprovalTests sets ask).
            ["Covibe:Agents:Permissions:Mode"] = "bypass",
            ["Covibe:Agents:Permissions:AllowBypass"] = "true",
        };
        // 10 MB of random bytes (invalid UTF-8, NULs, no newlines for long stretches), then a marker.
        AddType(settings, "burst", ["sh", "-c", "head -c 10485760 /dev/urandom; printf 'burst done\\n'"]);
        // Echoes stdin lines back until EOF or a signal; prints its environment's secrets if it has any.
        AddType(settings, "echo", ["sh", "-c", "printf 'ready\\n'; while IFS= read -r line; do printf 'echo: %s\\n' \"$line\"; done"]);
        AddType(settings, "stubborn", ["sh", "-c", "trap '' TERM; printf 'ignoring SIGTERM\\n'; while :; do sleep 1; done"]);
        AddType(settings, "env", ["sh", "-c", "env"]);
        AddType(settings, "lines", ["sh", "-c", "seq 1 20000"]);
        AddType(settings, "count", ["sh", "-c", "seq 1 300; printf 'counted to 300\\n'"]);
        AddType(settings, "slow", ["sh", "-c", "i=0; while [ $i -lt 60 ]; do i=$((i+1)); echo line $i; sleep 0.05; done"]);
        AddType(settings, "ls", ["sh", "-c", "ls -A; git rev-parse --abbrev-ref HEAD"]);
        return settings;
    }

    internal static void AddType(Dictionary<string, string> settings, string name, string[] command)
    {
        for (var i = 0; i < command.Length; i++)
        {
            settings[$"Covibe:Agents:Types:{name}:Command:{i}"] = command[i];
        }
    }

    public static async Task<AgentDto> SpawnAsync(this TestServer server, string token, string task, string type = "mock", string? repositoryUrl = null, string? branch = null)
    {
        using var client = server.Client(token);
        // A spawn into a container waits on the engine, which other tests' images and containers keep busy on a 2-core machine.
        client.Timeout = TimeSpan.FromSeconds(90);
        using var reply = await client.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest(task, type, repositoryUrl, branch));
        reply.StatusCode.ShouldBe(System.Net.HttpStatusCode.Created, await reply.Content.ReadAsStringAsync());
        return (await reply.Content.ReadFromJsonAsync<AgentDto>())!;
    }

    public static async Task<AgentDto> GetAgentAsync(this TestServer server, string token, string id)
    {
        using var client = server.Client(token);
        return (await client.GetFromJsonAsync<AgentDto>($"/api/agent/{id}"))!;
    }

    /// <summary>Polls until the agent has finished.</summary>
    public static Task<AgentDto> WaitFinishedAsync(this TestServer server, string token, string id, TimeSpan? timeout = null) =>
        Eventually.UntilAsync(() => server.GetAgentAsync(token, id), a => AgentStatuses.IsFinal(a.Status), $"agent {id} finishes", timeout ?? TimeSpan.FromSeconds(60));

    /// <summary>The whole output over REST, page by page.</summary>
    public static async Task<byte[]> OutputAsync(this TestServer server, string token, string id, int limit = 1024 * 1024)
    {
        using var client = server.Client(token);
        return await client.OutputAsync(id, limit);
    }

    /// <summary>The whole output over REST, page by page, as the member <paramref name="client"/> signs in as.</summary>
    public static async Task<byte[]> OutputAsync(this HttpClient client, string id, int limit = 1024 * 1024)
    {
        var all = new MemoryStream();
        long from = 0;
        while (true)
        {
            using var reply = await client.GetAsync($"/api/agent/{id}/output?from={from}&limit={limit}");
            reply.EnsureSuccessStatusCode();
            var bytes = await reply.Content.ReadAsByteArrayAsync();
            all.Write(bytes);
            from = long.Parse(reply.Headers.GetValues("Covibe-Output-Next").Single(), System.Globalization.CultureInfo.InvariantCulture);
            if (reply.Headers.GetValues("Covibe-Output-Complete").Single() == "true" || bytes.Length == 0)
            {
                return all.ToArray();
            }
        }
    }

    /// <summary>The agent's own log on disk, the source of truth.</summary>
    public static byte[] LogOf(TestServer server, string agentId) =>
        File.ReadAllBytes(Path.Combine(server.DataDirectory, "agents", agentId, "output.log"));

    /// <summary>Collects agent_output for one agent until agent_output_end, checking positions are contiguous.</summary>
    public static async Task<(byte[] Bytes, long Next, string Status)> CollectOutputAsync(this HubClient hub, string agentId, long from = 0, TimeSpan? timeout = null)
    {
        var all = new MemoryStream();
        var expected = from;
        while (true)
        {
            var m = await hub.ReceiveAsync(e =>
                (e.GetProperty("type").GetString() is "agent_output" or "agent_output_end") && e.GetProperty("agentId").GetString() == agentId,
                timeout ?? TimeSpan.FromSeconds(60), $"output of {agentId}");
            if (m.GetProperty("type").GetString() == "agent_output_end")
            {
                m.GetProperty("next").GetInt64().ShouldBe(expected);
                return (all.ToArray(), expected, m.GetProperty("status").GetString()!);
            }
            m.GetProperty("position").GetInt64().ShouldBe(expected, "no gap, no overlap");
            var data = Decode(m);
            all.Write(data);
            expected += data.Length;
            m.GetProperty("next").GetInt64().ShouldBe(expected);
        }
    }

    public static byte[] Decode(JsonElement output) =>
        output.TryGetProperty("encoding", out var encoding) && encoding.GetString() == "base64"
            ? Convert.FromBase64String(output.GetProperty("data").GetString()!)
            : Encoding.UTF8.GetBytes(output.GetProperty("data").GetString()!);
}
