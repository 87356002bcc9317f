#!/usr/bin/env bash
# Runs every test, the way CI does. On a fresh Debian machine it first installs what the
# tests start for real (PostgreSQL server binaries, Chromium); NuGet packages restore on the way.
# Extra arguments go to `dotnet test`, e.g. ./test.sh --filter "FullyQualifiedName~Hub".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

need=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
[ -x /usr/bin/chromium ] || need+=(chromium)       # browser tests (Playwright drives Debian's Chromium)
command -v git >/dev/null || need+=(git)           # agents clone repositories
[ -x /usr/sbin/sshd ] || need+=(openssh-server)    # VMs over SSH: a real sshd on loopback
command -v ssh-keyscan >/dev/null || need+=(openssh-client)
command -v node >/dev/null || need+=(nodejs)       # the fake claude test asset
command -v npm >/dev/null || need+=(npm)           # the build fetches xterm.js for the web client
[ -f /usr/lib/python3/dist-packages/websockets/__init__.py ] || need+=(python3-websockets)  # seed 004's Python client
[ -f /usr/lib/python3/dist-packages/socketio/__init__.py ] || need+=(python3-socketio)      # seed 001's Python client (python-socketio)...
[ -f /usr/lib/python3/dist-packages/websocket/__init__.py ] || need+=(python3-websocket)    # ...its WebSocket transport
[ -f /usr/lib/python3/dist-packages/requests/__init__.py ] || need+=(python3-requests)      # ...and its long polling
command -v vi >/dev/null || need+=(vim-tiny)       # terminals: a full-screen editor through the PTY
command -v top >/dev/null || need+=(procps)
command -v bwrap >/dev/null || need+=(bubblewrap)  # agents and terminals on the server run sandboxed
command -v slirp4netns >/dev/null || need+=(slirp4netns)  # ...with a network of their own (internet, not this machine)
command -v ip >/dev/null || need+=(iproute2)
command -v podman >/dev/null || need+=(podman)     # containers: Podman serves the Docker Engine API to the tests
command -v runc >/dev/null || need+=(runc)
[ -x /usr/libexec/podman/catatonit ] || need+=(catatonit)   # the init in agent containers
[ -x /usr/bin/redis-server ] || need+=(redis-server)   # several nodes: their Redis, started by the tests on loopback
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)   # several nodes: a load balancer in front of them in the tests
[ -x /usr/sbin/fcgiwrap ] || need+=(fcgiwrap)     # a private repository over git's smart HTTP (git http-backend behind nginx)
command -v openssl >/dev/null || need+=(openssl)   # deploy/: the nginx test's self-signed certificate
command -v systemd-analyze >/dev/null || need+=(systemd)   # deploy/: the units are checked by systemd-analyze verify and security
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "Installing test dependencies: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# Boxes from a repository's dev container configuration: the real Dev Containers CLI (it drives Podman's
# remote client when no docker CLI is installed).
if ! command -v devcontainer >/dev/null; then
  echo "Installing the Dev Containers CLI (@devcontainers/cli) from npm"
  $([ "$(id -u)" -ne 0 ] && echo sudo) npm install -g --no-audit --no-fund --loglevel=error @devcontainers/cli@0.89.0
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
# Every test server watches agents' logs with inotify, and Chromium and Podman take instances too: a whole run in
# parallel can use up Linux's default of 128 per user (a server then falls back to polling, and a test of the watch fails).
if [ "$(id -u)" -eq 0 ] && [ "$(cat /proc/sys/fs/inotify/max_user_instances)" -lt 1024 ]; then
  sysctl -qw fs.inotify.max_user_instances=1024 || echo "Could not raise fs.inotify.max_user_instances; a full run may exceed 128." >&2
fi
# Each test server makes its own group of per-team cgroups (named after its temp data directory); their agents may outlive
# it, so the groups they leave are removed here, once empty (rmdir refuses a group with a process in it).
remove_test_cgroups() {
  find /sys/fs/cgroup -depth -type d \( -name 'team-*' -o -name 'covibe-*' \) -path '*covibe-*' -exec rmdir {} + 2>/dev/null || true
}
# A run cut short leaves teams' bridges (their Podman is gone) and the stand-in internet's namespace (OutsideNetwork).
remove_test_networks() {
  for link in $(ip -o link show 2>/dev/null | sed -n 's/^[0-9]*: \(covibe[0-9a-f]\{9\}\|cvo[0-9a-f]\{8\}\)[:@].*/\1/p'); do
    [ -z "$(ls "/sys/class/net/$link/brif" 2>/dev/null)" ] && ip link del "$link" 2>/dev/null
  done
  for ns in $(ip netns list 2>/dev/null | sed -n 's/^\(covibe-out-[0-9a-f]*\).*/\1/p'); do ip netns del "$ns"; done
  # The test teams' egress chains (each run's teams are new).
  if command -v iptables >/dev/null && iptables -n -L COVIBE-EGRESS >/dev/null 2>&1; then
    iptables -F COVIBE-EGRESS; iptables -F COVIBE-EGRESS-HOST
    for chain in $(iptables -S | sed -n 's/^-N \(COVIBE-E-[0-9a-f]*\)$/\1/p'); do iptables -F "$chain"; iptables -X "$chain"; done
  fi
  return 0
}
status=0
dotnet test Covibe.sln -c Release "$@" || status=$?
remove_test_cgroups
remove_test_networks
exit $status
