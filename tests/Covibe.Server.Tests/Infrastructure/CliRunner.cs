using System.Diagnostics;
using System.Text;

namespace Covibe.Server.Tests.Infrastructure;

/// <summary>Runs the real <c>covibe</c> executable as a separate process, as a user would.</summary>
public sealed class CliRunner(string configDirectory)
{
    public static readonly string Dll = Path.Combine(AppContext.BaseDirectory, "covibe.dll");

    public string ConfigDirectory { get; } = configDirectory;

    public async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string? stdin, params string[] args)
    {
        using var process = Start(args, stdin is not null);
        if (stdin is not null)
        {
            await process.StandardInput.WriteLineAsync(stdin);
            process.StandardInput.Close();
        }
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"covibe {string.Join(' ', args)} did not finish: {await stdout}{await stderr}");
        }
        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Starts a long-running command; the caller reads its output and stops it.</summary>
    public Process Start(string[] args, bool redirectStdin = false, IReadOnlyDictionary<string, string?>? environment = null)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = redirectStdin,
            StandardOutputEncoding = Encoding.UTF8,
        };
        info.ArgumentList.Add(Dll);
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }
        info.Environment["COVIBE_CONFIG_DIR"] = ConfigDirectory;
        info.Environment["JWT_SECRET"] = null;
        info.Environment["ENCRYPTION_KEY"] = null;
        info.Environment["COVIBE_SERVER"] = null;
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        foreach (var (key, value) in environment ?? new Dictionary<string, string?>())
        {
            info.Environment[key] = value;
        }
        return Process.Start(info)!;
    }
}
