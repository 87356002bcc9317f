using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using Covibe.Protocol;

/// <summary>
/// Runner benchmark (issue 14): the same agent (the fake claude writing stamped lines at a steady rate, then as fast as it
/// can) on this server (sandboxed), on a VM over SSH, and on runner VMs over a WebSocket and over long polls: latency from
/// the agent's write to a watcher's receipt, bytes delivered, and throughput. The VMs are this machine (a real sshd, real
/// `covibe runner` processes as another user), so the numbers are each path's own cost, not a network's.
///   dotnet run -c Release --project bench/Covibe.Bench -- runner [--rate 1048576] [--seconds 10] [--burst-mib 32]
/// </summary>
static class RunnerBench
{
    public static async Task RunAsync(string[] args)
    {
        var rate = Measure.Arg(args, "--rate", 1024 * 1024);
        var seconds = Measure.Arg(args, "--seconds", 10);
        var burst = Measure.Arg(args, "--burst-mib", 32);
        var work = Path.Combine(Path.GetTempPath(), "covibe-runner-bench-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(work);
        File.SetUnixFileMode(work, (UnixFileMode)0b111_101_101);
        await using var sshd = await BenchSshd.StartAsync(work);
        var tools = InstallTools(work);
        var url = $"http://127.0.0.1:{Measure.FreePort()}";
        var fake = Path.Combine(AppContext.BaseDirectory, "fake-claude", "claude");
        string[] vmClaude = [Path.Combine(tools, "claude"), "-p", "{task}", "--output-format", "stream-json", "--verbose"];
        using var server = Measure.StartServer(Path.Combine(work, "data"), url, [
            $"--Covibe:Agents:Types:claude:Environment:PATH={Path.GetDirectoryName(fake)}:{Environment.GetEnvironmentVariable("PATH")}",
            // Output fan-out, not approvals: the agent asks nothing.
            "--Covibe:Agents:Permissions:Mode=bypass", "--Covibe:Agents:Permissions:AllowBypass=true",
            .. vmClaude.Select((a, i) => $"--Covibe:Agents:Types:vmclaude:Command:{i}={a}"),
            "--Covibe:Agents:Types:vmclaude:Environment:PATH=/usr/local/bin:/usr/bin:/bin",
            "--Covibe:Agents:MaxActivePerTeam=100", "--Covibe:Agents:SpawnsPerMinute=1000"]);
        var runners = new List<Process>();
        try
        {
            await Measure.WaitHealthyAsync(url);
            using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromMinutes(5) };
            var token = await Measure.CreateTeamAsync(http);
            var ssh = await RegisterAsync(http, new RegisterVmRequest("ssh", "127.0.0.1", sshd.Port, sshd.User, PrivateKey: sshd.PrivateKey, HostKeyFingerprint: sshd.HostKeyFingerprint));
            var websocket = await RegisterAsync(http, new RegisterVmRequest("runner-ws", null, null, null, ConnectionType: "polling"));
            var polling = await RegisterAsync(http, new RegisterVmRequest("runner-poll", null, null, null, ConnectionType: "polling"));
            runners.Add(StartRunner(work, tools, sshd.User, "ws", url, websocket.RegistrationToken!, "websocket"));
            runners.Add(StartRunner(work, tools, sshd.User, "poll", url, polling.RegistrationToken!, "poll"));
            await WaitOnlineAsync(http, [websocket.Id, polling.Id]);

            Console.WriteLine($"{TimeProvider.System.GetUtcNow():yyyy-MM-dd}, {Environment.ProcessorCount} cores; {rate / 1048576.0:0.##} MiB/s for {seconds} s, then {burst} MiB as fast as the agent writes; one watcher");
            Console.WriteLine();
            Console.WriteLine("| where the agent runs | p50 / p99 / max latency | bytes delivered | burst: MiB/s, spawn to last byte | burst: last byte after the agent wrote it |");
            Console.WriteLine("| --- | --- | --- | --- | --- |");
            foreach (var (name, vmId, type) in new[] { ("this server (sandbox)", (string?)null, "claude"), ("VM over SSH", ssh.Id, "vmclaude"),
                ("runner VM, WebSocket", websocket.Id, "vmclaude"), ("runner VM, long polling", polling.Id, "vmclaude") })
            {
                await RunOnceAsync(http, url, token, vmId, type, rate, 1); // warm-up
                var steady = await RunOnceAsync(http, url, token, vmId, type, rate, seconds);
                var fast = await RunOnceAsync(http, url, token, vmId, type, 0, 0, burst);
                Console.WriteLine($"| {name} | {steady.Latency.Percentile(0.5)} / {steady.Latency.Percentile(0.99)} / {steady.Latency.Max} ms | " +
                    $"{(steady.Complete ? "all" : "INCOMPLETE")} ({steady.Bytes / 1048576.0:0.0} MiB) | {fast.Bytes / 1048576.0 / fast.Seconds:0.0} | {fast.Latency.Max} ms |");
            }
        }
        finally
        {
            foreach (var runner in runners)
            {
                if (!runner.HasExited)
                {
                    runner.Kill(entireProcessTree: true);
                }
                runner.Dispose();
            }
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
            Directory.Delete(work, recursive: true);
        }
    }

    private sealed record Run(Histogram Latency, long Bytes, bool Complete, double Seconds);

    /// <summary>One agent, watched from its first byte: latency of every stamp, bytes against the agent's own log size.</summary>
    private static async Task<Run> RunOnceAsync(HttpClient http, string url, string token, string? vmId, string type, int rate, int seconds, int burstMiB = 0)
    {
        // Stamped lines are about 420 bytes.
        var lines = burstMiB > 0 ? burstMiB * 1048576 / 420 : (int)((long)rate * seconds / 420);
        await using var watcher = await Subscriber.ConnectAsync(new Uri(url), token);
        var task = $"bench [[stamp]] {(rate > 0 ? $"[[rate={rate}]] " : "")}[[lines={lines}]]";
        var watch = Stopwatch.StartNew();
        using var reply = await http.PostAsJsonAsync("/api/agent/spawn", new SpawnAgentRequest(task, type, VmId: vmId), CovibeJsonContext.Default.SpawnAgentRequest);
        if (!reply.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"Spawning on {vmId ?? "the server"}: {await reply.Content.ReadAsStringAsync()}");
        }
        var id = (await reply.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;
        var received = await watcher.ReceiveToEndAsync(id);
        watch.Stop();
        var agent = await http.GetFromJsonAsync<JsonElement>($"/api/agent/{id}");
        var logged = agent.GetProperty("outputBytes").GetInt64();
        return new Run(received.Latency, received.Bytes, received.Contiguous && received.Bytes == logged && agent.GetProperty("status").GetString() == "completed", watch.Elapsed.TotalSeconds);
    }

    private static async Task<VmDto> RegisterAsync(HttpClient http, RegisterVmRequest request)
    {
        using var reply = await http.PostAsJsonAsync("/api/vm/register", request, CovibeJsonContext.Default.RegisterVmRequest);
        return reply.IsSuccessStatusCode ? (await reply.Content.ReadFromJsonAsync(CovibeJsonContext.Default.VmDto))!
            : throw new InvalidOperationException($"Registering {request.Name}: {await reply.Content.ReadAsStringAsync()}");
    }

    private static async Task WaitOnlineAsync(HttpClient http, string[] ids)
    {
        for (var i = 0; i < 300; i++)
        {
            var vms = await http.GetFromJsonAsync(("/api/vm/list"), CovibeJsonContext.Default.VmDtoArray);
            if (ids.All(id => vms!.Single(v => v.Id == id).Status == "online"))
            {
                return;
            }
            await Task.Delay(100);
        }
        throw new TimeoutException("The runners did not come online.");
    }

    /// <summary>The fake claude and this covibe build, where the VM's user can run them (the checkout may not be readable to it).</summary>
    private static string InstallTools(string work)
    {
        var tools = Path.Combine(work, "tools");
        Directory.CreateDirectory(tools);
        File.Copy(Path.Combine(AppContext.BaseDirectory, "fake-claude", "claude"), Path.Combine(tools, "claude"));
        foreach (var file in Directory.GetFiles(AppContext.BaseDirectory).Where(f => f.EndsWith(".dll", StringComparison.Ordinal) || f.EndsWith(".json", StringComparison.Ordinal)))
        {
            File.Copy(file, Path.Combine(tools, Path.GetFileName(file)));
        }
        foreach (var entry in Directory.GetFileSystemEntries(tools).Append(tools))
        {
            File.SetUnixFileMode(entry, (UnixFileMode)0b111_101_101);
        }
        return tools;
    }

    /// <summary>A real `covibe runner` as <paramref name="user"/>, in a home of its own.</summary>
    private static Process StartRunner(string work, string tools, string user, string name, string url, string token, string transport)
    {
        var home = Path.Combine(work, "home-" + name);
        Directory.CreateDirectory(home);
        string[] runner = ["dotnet", Path.Combine(tools, "covibe.dll"), "runner", "--server", url, "--token", token, "--transport", transport];
        var info = Environment.UserName == "root"
            ? new ProcessStartInfo("setpriv", ["--reuid", user, "--regid", user, "--init-groups", "--", .. runner])
            : new ProcessStartInfo(runner[0], runner[1..]);
        if (Environment.UserName == "root")
        {
            Process.Start("chown", [user, home])!.WaitForExit();
        }
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        info.Environment["HOME"] = home;
        info.Environment["COVIBE_CONFIG_DIR"] = Path.Combine(home, ".config", "covibe");
        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { Console.Error.WriteLine($"runner {name}: {e.Data}"); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }
}
