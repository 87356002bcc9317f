namespace Covibe.Execution;

/// <summary>
/// The POSIX sh script every backend runs the agent under, so a local process and one on a VM
/// over SSH behave the same. Its arguments are positional and never interpolated into the
/// script: <c>$1</c> runtime directory, <c>$2</c> working directory, <c>$3</c> repository URL
/// (or empty), <c>$4</c> branch (or empty), then the agent's argv.
/// </summary>
/// <remarks>
/// Runtime directory layout: <c>stdin</c> (FIFO), <c>output.log</c> (stdout and stderr, appended),
/// <c>first-input</c> (optional: bytes for stdin before the agent starts), <c>holder</c> (PID of the process keeping stdin open: killing it lets the agent read EOF),
/// <c>running</c> (created when the agent itself starts, after any clone or work tree), <c>exit</c> (its exit code),
/// <c>wrapper.pid</c> (the wrapper's PID as it sees it: inside a container, for signals sent there).
/// </remarks>
public static class AgentWrapper
{
    public const string Script = """
        rt=$1; wd=$2; repo=$3; branch=$4; shift 4
        exec >>"$rt/output.log" 2>&1 </dev/null
        printf '%s\n' "$$" > "$rt/wrapper.pid"
        # A holder keeps the stdin FIFO open for writing, so the agent never reads EOF while the
        # server is away; killing the holder ends the agent's input on purpose.
        exec 3<>"$rt/stdin"
        sleep 2147483647 >&3 3>&- &
        holder=$!
        printf '%s\n' "$holder" > "$rt/holder"
        # Input queued before the agent starts (a conversational agent's first message) waits in the pipe.
        if [ -f "$rt/first-input" ]; then cat "$rt/first-input" >&3; fi
        exec 3>&-
        # The holder goes by the PID the wrapper remembers: its runtime directory may be gone by then.
        finish() { kill "$holder" 2>/dev/null; printf '%s\n' "$1" > "$rt/exit.tmp" && mv "$rt/exit.tmp" "$rt/exit"; exit "$1"; }
        # A work tree (WorkTree): a clone of a repository of this machine, shown read-only at its path, borrowing its
        # objects; made once (a wrapper started again finds it), on a branch of its own. The source belongs to the server:
        # trusted for this one clone only.
        if [ -n "$COVIBE_TREE_SOURCE" ]; then
          if [ ! -e "$wd/.git" ]; then
            mkdir -p "$wd" || finish 1
            trust=$(mktemp) || finish 1
            printf '[safe]\n\tdirectory = %s\n' "$COVIBE_TREE_SOURCE" > "$trust"
            # A bundle (copied to another machine) holds the objects itself: fetched whole, nothing borrowed.
            case $COVIBE_TREE_SOURCE in
              *.bundle) bundle=$COVIBE_TREE_SOURCE
                git init --quiet "$wd" && git -C "$wd" fetch --quiet --no-tags "$bundle" '+refs/*:refs/covibe-source/*' ;;
              *) bundle=
                GIT_CONFIG_GLOBAL="$trust" git clone --quiet --shared --no-checkout -- "$COVIBE_TREE_SOURCE" "$wd" ;;
            esac \
              && git -C "$wd" -c advice.detachedHead=false checkout --quiet -b "$COVIBE_TREE_BRANCH" "$COVIBE_TREE_COMMIT" \
              && git -C "$wd" config user.name "Covibe agent" && git -C "$wd" config user.email "agent@covibe.invalid" \
              || { rm -f "$trust"; finish 128; }
            rm -f "$trust"
            if [ -n "$bundle" ]; then
              for ref in $(git -C "$wd" for-each-ref --format='%(refname)' refs/covibe-source/); do git -C "$wd" update-ref -d "$ref"; done
              rm -f "$bundle"
            fi
          fi
          unset COVIBE_TREE_SOURCE COVIBE_TREE_COMMIT COVIBE_TREE_BRANCH
        fi
        if [ -n "$repo" ]; then
          mkdir -p "$wd" || finish 1
          if [ -n "$branch" ]; then
            git clone --progress --branch "$branch" -- "$repo" "$wd" || finish 128
          else
            git clone --progress -- "$repo" "$wd" || finish 128
          fi
        fi
        mkdir -p "$wd" && cd "$wd" || finish 1
        : > "$rt/running"
        # An interrupt is Ctrl-C: it must reach the agent even when whoever started the server or the runner ignores
        # SIGINT (a script's background job does, and sh cannot undo that); GNU env can reset it.
        if env --default-signal=INT true 2>/dev/null; then
          env --default-signal=INT "$@" <"$rt/stdin"
        else
          "$@" <"$rt/stdin"
        fi
        finish $?
        """;

    public const string ProgramName = "covibe-agent";
}
