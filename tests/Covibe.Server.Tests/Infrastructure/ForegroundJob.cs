using System.Globalization;

namespace Covibe.Server.Tests.Infrastructure;

/// <summary>
/// Waits until a command typed into a terminal is running as the terminal's foreground job: what a
/// person sees before pressing Control-C. Pressed earlier, the interrupt can reach the shell while it
/// is still starting the job (reading the line, forking) instead of the job.
/// </summary>
public static class ForegroundJob
{
    /// <summary><paramref name="arguments"/> is the job's whole command line, so make it distinctive (e.g. <c>sleep 29.7</c>).</summary>
    public static Task WaitAsync(params string[] arguments)
    {
        var cmdline = string.Join('\0', arguments) + '\0';
        return Eventually.UntilAsync(() => Task.FromResult(IsForeground(cmdline)), $"'{string.Join(' ', arguments)}' as a terminal's foreground job");
    }

    private static bool IsForeground(string cmdline)
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            try
            {
                if (!int.TryParse(Path.GetFileName(dir), out _) || File.ReadAllText(Path.Combine(dir, "cmdline")) != cmdline)
                {
                    continue;
                }
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                // After the command name: 0 state, 1 ppid, 2 pgrp, 3 session, 4 tty, 5 the tty's foreground group.
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                if (fields[2] == fields[5] && int.Parse(fields[5], CultureInfo.InvariantCulture) > 0)
                {
                    return true;
                }
            }
            catch (IOException)
            {
                // The process ended while we looked.
            }
        }
        return false;
    }
}
