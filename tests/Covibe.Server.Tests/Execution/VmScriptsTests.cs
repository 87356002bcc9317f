using System.Diagnostics;
using Covibe.Execution;

namespace Covibe.Server.Tests;

/// <summary>The probe of an agent on a VM (over SSH or by its runner), run by a real sh.</summary>
public sealed class VmScriptsTests : IDisposable
{
    private readonly string _runtime = Directory.CreateTempSubdirectory("covibe-probe-").FullName;

    [Fact]
    public async Task AnAgentThatEndsWhileItIsProbed_IsNeverSaidToHaveEndedShortOfItsOutput()
    {
        // The agent is running and has written a line; then, while the probe measures its log, it writes the rest and
        // ends (a `wc` that does so as it counts: the moment a busy machine can put between two steps of the probe).
        var log = Path.Combine(_runtime, "output.log");
        await File.WriteAllTextAsync(log, "1\n");
        await File.WriteAllTextAsync(Path.Combine(_runtime, "running"), "");
        var shims = Directory.CreateDirectory(Path.Combine(_runtime, "bin")).FullName;
        var wc = Path.Combine(shims, "wc");
        await File.WriteAllTextAsync(wc, $"""
            #!/bin/sh
            /usr/bin/wc "$@"
            if [ ! -f "{_runtime}/exit" ]; then seq 2 20000 >> "{log}"; echo 0 > "{_runtime}/exit"; fi
            """);
        File.SetUnixFileMode(wc, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        using var agent = Process.Start("sleep", "60");
        var startTime = (await File.ReadAllTextAsync($"/proc/{agent.Id}/stat")).Split(' ')[21];

        try
        {
            var first = await ProbeAsync(shims, agent.Id, startTime);
            var second = await ProbeAsync(shims, agent.Id, startTime);

            // Said running at first (the end came after the probe looked for it), then ended at its whole length; never
            // ended at the length it had before (a follower stops at the size said, and the rest was never sent).
            var whole = new FileInfo(log).Length;
            first.ShouldBe("running - 2");
            second.ShouldBe($"exit 0 {whole}");
        }
        finally
        {
            agent.Kill();
        }
    }

    private async Task<string> ProbeAsync(string shims, int pid, string startTime)
    {
        var info = new ProcessStartInfo("sh", ["-c", VmScripts.Prober, "covibe-probe", _runtime, pid.ToString(System.Globalization.CultureInfo.InvariantCulture), startTime])
        {
            RedirectStandardOutput = true,
        };
        info.Environment["PATH"] = $"{shims}:{Environment.GetEnvironmentVariable("PATH")}";
        using var probe = Process.Start(info)!;
        var output = await probe.StandardOutput.ReadToEndAsync();
        await probe.WaitForExitAsync();
        return output.Trim();
    }

    public void Dispose() => Directory.Delete(_runtime, recursive: true);
}
