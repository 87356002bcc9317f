namespace Covibe.Execution;

/// <summary>
/// What runs on a VM to start, probe, signal and feed an agent under the wrapper (<see cref="AgentWrapper"/>), in seed
/// 001's layout (<c>~/agent_logs/&lt;id&gt;</c>, <c>~/project/&lt;id&gt;</c>). The same scripts whether the server runs them
/// over SSH (<see cref="SshBackend"/>) or the VM's runner runs them for the server (<c>covibe runner</c>), so an agent
/// behaves alike on both.
/// </summary>
public static class VmScripts
{
    // $1 wrapper script, $2 runtime dir and $3 work dir (relative to $HOME), then repo, branch, argv.
    public const string Launcher = """
        w=$1; rt="$HOME/$2"; wd="$HOME/$3"; shift 3
        mkdir -p "$rt" && chmod 700 "$rt" && rm -f "$rt/stdin" && mkfifo -m 600 "$rt/stdin" && : > "$rt/output.log" || exit 1
        cat > "$rt/first-input"
        [ -s "$rt/first-input" ] || rm -f "$rt/first-input"
        # Not with `&`: a non-interactive shell starts background commands with SIGINT ignored, and the agent would
        # inherit that (Ctrl-C would never reach it). setsid -f forks by itself; the wrapper says its PID.
        setsid -f sh -c "$w" covibe-agent "$rt" "$wd" "$@" </dev/null >/dev/null 2>&1 || exit 1
        i=0; while [ ! -s "$rt/wrapper.pid" ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done
        pid=$(cat "$rt/wrapper.pid" 2>/dev/null) && [ -n "$pid" ] || exit 1
        st=$(cut -d' ' -f22 /proc/$pid/stat 2>/dev/null)
        printf '%s %s %s\n' "$pid" "${st:-0}" "$rt"
        """;

    // Whether the agent ended is read before how long its log is: a size read first could miss the end of its output
    // written meanwhile, and "ended at that size" would then cut the output short (followers stop at the size said).
    public const string Prober = """
        rt=$1; pid=$2; st=$3
        size() { wc -c < "$rt/output.log" 2>/dev/null || echo 0; }
        if [ -f "$rt/exit" ]; then echo "exit $(cat "$rt/exit") $(size)"; exit 0; fi
        if [ "$(cut -d' ' -f22 /proc/$pid/stat 2>/dev/null)" != "$st" ]; then
          if [ -f "$rt/exit" ]; then echo "exit $(cat "$rt/exit") $(size)"
          elif kill -0 -- "-$pid" 2>/dev/null; then echo "running - $(size)"  # the wrapper died, the agent lives on in its group
          else echo "gone - $(size)"; fi
          exit 0
        fi
        if [ -f "$rt/running" ]; then echo "running - $(size)"; else echo "starting - $(size)"; fi
        """;

    public const string Signaller = """
        rt=$1; pid=$2; st=$3
        # Still ours: the wrapper itself, or (it died) what is left of its process group.
        [ "$(cut -d' ' -f22 /proc/$pid/stat 2>/dev/null)" = "$st" ] || kill -0 -- "-$pid" 2>/dev/null || exit 0
        case $4 in
          int) for c in $(cat /proc/$pid/task/$pid/children 2>/dev/null); do kill -INT "$c" 2>/dev/null; done ;;
          term) kill -TERM -"$pid" 2>/dev/null ;;
          kill) kill -KILL -"$pid" 2>/dev/null ;;
          eof) kill "$(cat "$rt/holder")" 2>/dev/null ;;
        esac
        exit 0
        """;

    /// <summary>$1 runtime dir: copies stdin into the agent's stdin FIFO; exit 3 once the agent has exited.</summary>
    public const string Input = "[ -e \"$1/exit\" ] && exit 3; exec 3<>\"$1/stdin\"; cat >&3";

    /// <summary>The signal names <see cref="Signaller"/> takes ($4).</summary>
    public static string SignalName(AgentSignal signal) => signal switch { AgentSignal.Interrupt => "int", AgentSignal.Terminate => "term", _ => "kill" };

    /// <summary>The agent's runtime directory, relative to the VM user's home (seed 001's <c>agent_logs/&lt;id&gt;</c>).</summary>
    public static string RuntimeOf(AgentLaunch launch) => $"agent_logs/{launch.AgentId}";

    /// <summary>Where it works, relative to the VM user's home: <c>project/&lt;dir&gt;</c>, or a box's repository.</summary>
    public static string WorkingDirectoryOf(AgentLaunch launch) => launch.RemoteDirectory ?? $"project/{launch.WorkingDirectory}";

    /// <summary>The argv that runs <see cref="Launcher"/> for <paramref name="launch"/> (<paramref name="runtime"/> and <paramref name="workingDirectory"/> relative to $HOME).</summary>
    public static string[] LaunchArgv(string runtime, string workingDirectory, string? repositoryUrl, string? branch, IEnumerable<KeyValuePair<string, string>> environment, IEnumerable<string> argv) =>
        ["sh", "-c", Launcher, "covibe-launch", AgentWrapper.Script, runtime, workingDirectory, repositoryUrl ?? "", branch ?? "", "env",
            .. environment.Select(e => $"{e.Key}={e.Value}"), .. argv];
}
