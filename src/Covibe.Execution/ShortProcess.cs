using System.Diagnostics;

namespace Covibe.Execution;

/// <summary>A short program run to its end: argv (never a shell line), only the environment given, its output bounded, stopped after its time.</summary>
public static class ShortProcess
{
    /// <summary>
    /// Runs <paramref name="argv"/>: its exit code (-1 when it printed more than <paramref name="maxOutput"/> characters, then
    /// stopped), what it printed to stdout (at most that) and to stderr. Stopped, with its children, when cancelled or after
    /// <paramref name="timeout"/> (then <see cref="TimeoutException"/>).
    /// </summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(IReadOnlyList<string> argv, IReadOnlyDictionary<string, string> environment,
        int maxOutput, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo(argv[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in argv.Skip(1))
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment.Clear();
        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }
        using var process = Process.Start(info)!;
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        try
        {
            var stderr = process.StandardError.ReadToEndAsync(limit.Token);
            var buffer = new char[maxOutput];
            var read = 0;
            int n;
            while (read < buffer.Length && (n = await process.StandardOutput.ReadAsync(buffer.AsMemory(read), limit.Token)) > 0)
            {
                read += n;
            }
            var cut = read == buffer.Length;
            if (cut)
            {
                process.Kill(entireProcessTree: true); // more than the caller takes: what was read is what it gets
            }
            await process.WaitForExitAsync(limit.Token);
            return (cut ? -1 : process.ExitCode, new string(buffer, 0, read), cut ? "" : await stderr);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            cancellationToken.ThrowIfCancellationRequested();
            throw new TimeoutException($"{argv[0]} took longer than {timeout.TotalSeconds:0} s and was stopped.");
        }
    }
}
