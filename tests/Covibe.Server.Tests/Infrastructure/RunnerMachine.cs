using System.Diagnostics;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Covibe.Protocol;

namespace Covibe.Server.Tests.Infrastructure;

/// <summary>
/// A runner VM for the tests: a real <c>covibe runner</c> (the copy the VM fixture installs) as another user (the VM
/// fixture's account when the tests run as root), with a home directory of its own where its agents, projects and
/// saved credential live.
/// </summary>
public sealed class RunnerMachine : IAsyncDisposable
{
    private readonly SshServer _vm;
    private readonly StringBuilder _output = new();
    private Process? _process;

    private RunnerMachine(SshServer vm, string home)
    {
        _vm = vm;
        Home = home;
    }

    public string Home { get; }

    /// <summary>The account the runner runs as.</summary>
    public string User => _vm.User;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public bool HasExited => _process?.HasExited ?? true;

    public static RunnerMachine Create(SshServer vm)
    {
        var home = Path.Combine(Path.GetTempPath(), "covibe-runner-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(home, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        if (Environment.UserName == "root")
        {
            Run("chown", vm.User, home);
        }
        return new RunnerMachine(vm, home);
    }

    /// <summary>
    /// Starts <c>covibe runner</c> with <paramref name="args"/> (e.g. <c>--server URL --token T</c>; none: the saved
    /// registration), with SIGINT ignored as a script's background job has it (<c>covibe runner &amp;</c>, nohup): its
    /// agents must be interruptible all the same.
    /// </summary>
    public void Start(params string[] args)
    {
        string[] runner = ["sh", "-c", "trap '' INT; exec \"$@\"", "sh", _vm.Covibe, "runner", .. args];
        var info = Environment.UserName == "root"
            ? new ProcessStartInfo("setpriv", ["--reuid", _vm.User, "--regid", _vm.User, "--init-groups", "--", .. runner])
            : new ProcessStartInfo(runner[0], runner[1..]);
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        info.UseShellExecute = false;
        info.Environment.Clear();
        info.Environment["HOME"] = Home;
        info.Environment["USER"] = _vm.User;
        info.Environment["PATH"] = "/usr/local/bin:/usr/bin:/bin";
        info.Environment["COVIBE_CONFIG_DIR"] = Path.Combine(Home, ".config", "covibe");
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        _process = Process.Start(info)!;
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>SIGKILL, as a machine that loses power would stop it (its agents are detached and live on).</summary>
    public async Task KillAsync()
    {
        if (_process is { HasExited: false } process)
        {
            process.Kill();
            await process.WaitForExitAsync();
        }
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var limit = new CancellationTokenSource(timeout);
        await _process!.WaitForExitAsync(limit.Token);
        return _process.ExitCode;
    }

    /// <summary>The agent's log on the VM, as the runner's wrapper wrote it.</summary>
    public byte[] LogOf(string agentId) => File.ReadAllBytes(Path.Combine(Home, "agent_logs", agentId, "output.log"));

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.AppendLine(line);
            }
        }
    }

    private static void Run(string file, params string[] args)
    {
        using var process = Process.Start(file, args);
        process.WaitForExit();
        process.ExitCode.ShouldBe(0, $"{file} {string.Join(' ', args)}");
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is not null)
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
            _process.Dispose();
        }
        // Agents it started are detached (their own sessions, led by their wrappers): stop any the test left running.
        foreach (var directory in Directory.Exists(Path.Combine(Home, "agent_logs")) ? Directory.GetDirectories(Path.Combine(Home, "agent_logs")) : [])
        {
            var leader = Path.Combine(directory, "wrapper.pid");
            if (File.Exists(leader) && int.TryParse(File.ReadAllText(leader).Trim(), out var pid))
            {
                using var kill = Process.Start("kill", ["-KILL", "--", $"-{pid}"]);
                await kill.WaitForExitAsync();
            }
        }
        StartupTests.Delete(Home); // a dying wrapper may still write its exit file
    }
}

/// <summary>
/// A runner played by the test itself, speaking the runner protocol over its WebSocket: to try what a real runner never
/// sends (another VM's agents, garbage), and to answer the server's requests as the test decides.
/// </summary>
public sealed class FakeRunner : IAsyncDisposable
{
    private readonly ClientWebSocket _socket = new();
    private readonly System.Threading.Channels.Channel<RunnerMessage> _received = System.Threading.Channels.Channel.CreateUnbounded<RunnerMessage>();
    private Task? _reading;

    private FakeRunner(string credential, string vmId)
    {
        Credential = credential;
        VmId = vmId;
    }

    public string Credential { get; }
    public string VmId { get; }
    public WebSocketCloseStatus? CloseStatus => _socket.CloseStatus;

    /// <summary>Exchanges <paramref name="token"/> as a runner would (POST /api/runner/register).</summary>
    public static async Task<RunnerRegisterResponse> RegisterAsync(Uri server, string token)
    {
        using var http = new HttpClient { BaseAddress = server };
        using var reply = await http.PostAsJsonAsync("/api/runner/register", new RunnerRegisterRequest(token, "fake-host", "fake-user", "test"));
        reply.EnsureSuccessStatusCode();
        return (await reply.Content.ReadFromJsonAsync<RunnerRegisterResponse>())!;
    }

    /// <summary>Connects with <paramref name="credential"/> and says hello; the welcome is the first message received.</summary>
    public static async Task<FakeRunner> ConnectAsync(Uri server, string credential, string vmId)
    {
        var runner = new FakeRunner(credential, vmId);
        runner._socket.Options.SetRequestHeader("Authorization", $"Bearer {credential}");
        await runner._socket.ConnectAsync(new Uri($"ws://127.0.0.1:{server.Port}/api/runner/connect"), CancellationToken.None);
        runner._reading = runner.ReadAsync();
        await runner.SendAsync(new RunnerMessage(RunnerProtocol.Hello, Version: RunnerProtocol.Version, Hostname: "fake-host", User: "fake-user"));
        return runner;
    }

    public Task SendAsync(RunnerMessage message) =>
        _socket.SendAsync(JsonSerializer.SerializeToUtf8Bytes(message, CovibeJsonContext.Default.RunnerMessage), WebSocketMessageType.Text, true, CancellationToken.None);

    public async Task<RunnerMessage> ReceiveAsync(Func<RunnerMessage, bool> match, TimeSpan? timeout = null)
    {
        using var limit = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(20));
        while (true)
        {
            var message = await _received.Reader.ReadAsync(limit.Token);
            if (match(message))
            {
                return message;
            }
        }
    }

    /// <summary>Completes when the server closed the connection.</summary>
    public async Task ClosedAsync(TimeSpan timeout)
    {
        using var limit = new CancellationTokenSource(timeout);
        await _reading!.WaitAsync(limit.Token);
    }

    private async Task ReadAsync()
    {
        var buffer = new byte[1024 * 1024];
        try
        {
            while (true)
            {
                var (count, closed) = await Measure(buffer);
                if (closed)
                {
                    _received.Writer.TryComplete();
                    return;
                }
                _received.Writer.TryWrite(JsonSerializer.Deserialize(buffer.AsSpan(0, count), CovibeJsonContext.Default.RunnerMessage)!);
            }
        }
        catch (WebSocketException)
        {
            _received.Writer.TryComplete();
        }
    }

    private async Task<(int Count, bool Closed)> Measure(byte[] buffer)
    {
        var count = 0;
        while (true)
        {
            var result = await _socket.ReceiveAsync(buffer.AsMemory(count), CancellationToken.None);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return (0, true);
            }
            count += result.Count;
            if (result.EndOfMessage)
            {
                return (count, false);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_socket.State == WebSocketState.Open)
        {
            try
            {
                using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await _socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", limit.Token);
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException)
            {
            }
        }
        _socket.Dispose();
    }
}
