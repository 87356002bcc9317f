using System.Collections.Concurrent;
using Covibe.Execution;
using Covibe.Protocol;
using Covibe.Server.Data;
using Covibe.Server.Features.Vms;
using Covibe.Server.Http;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Covibe.Web;
using Covibe.Execution.Ssh;

namespace Covibe.Server.Features.Runners;

/// <summary>What the server knows of one runner VM: its live session (if connected), its lease, its agents as the runner reported them.</summary>
public sealed class RunnerVm(string id, DateTime leaseExpiresAt)
{
    private long _leaseTicks = leaseExpiresAt.Ticks;

    public string Id { get; } = id;
    public RunnerSession? Session { get; set; }
    public DateTime LeaseExpiresAt
    {
        get => new(Interlocked.Read(ref _leaseTicks), DateTimeKind.Utc);
        set => Interlocked.Exchange(ref _leaseTicks, value.Ticks);
    }
    /// <summary>The last state each of its agents reported: <c>starting</c>, <c>running</c>, <c>exit</c>, <c>gone</c>, with the log's size then.</summary>
    public ConcurrentDictionary<string, RunnerAgentReport> Agents { get; } = new();
    /// <summary>Signals asked for while the runner was away, sent when it is back.</summary>
    public ConcurrentDictionary<string, AgentSignal> PendingSignals { get; } = new();
    public DateTime LastLeaseWrite { get; set; }
    public Lock Gate { get; } = new();
}

public sealed record RunnerAgentReport(string State, int? ExitCode, long Size);

/// <summary>
/// Every runner VM's live state on this server, and the runner protocol's server side: a runner connects (one session per
/// VM; a newer connection replaces an older one), says hello and is told which of its agents to send output for, and
/// from which byte (what the server's mirror of each log already holds); then its output lands in those mirrors at the
/// offsets it names, so a resend is harmless and a gap is asked for again. Its heartbeats renew its lease: only a
/// runner silent past its lease loses its agents, never a dropped socket.
/// </summary>
public sealed class RunnerHub(
    IDbContextFactory<CovibeDb> dbs,
    VmAuditLog audit,
    VmEvents vmEvents,
    IVmAgents vmAgents,
    RunnerTerminals terminals,
    IOptions<RunnersOptions> options,
    IOptions<Hosting.ServerOptions> server,
    Cluster.Leases leases,
    Cluster.ThisNode node,
    TimeProvider time,
    ILogger<RunnerHub> logger)
{
    /// <summary>Which node a VM's runner is connected to, when there are several: the holder of this lease, renewed with the runner's.</summary>
    private static string LeaseName(string vmId) => "runner:" + vmId;

    private readonly ConcurrentDictionary<string, RunnerVm> _vms = new();

    public string MirrorRoot => Path.Combine(server.Value.DataDirectory, "runners");

    public TimeSpan Lease => TimeSpan.FromSeconds(options.Value.LeaseSeconds);

    /// <summary>
    /// The VM's state. Known VMs start with a full lease when this server first looks at them: if the server itself was
    /// away, the runner had no way to renew it.
    /// </summary>
    public RunnerVm Vm(string vmId) => _vms.GetOrAdd(vmId, id => new RunnerVm(id, time.GetUtcNow().UtcDateTime + Lease));

    public RunnerSession? SessionOf(string vmId) => _vms.TryGetValue(vmId, out var vm) ? vm.Session : null;

    /// <summary>
    /// The other node the VM's runner is connected to; null when it is connected here or nowhere. Its newest connection
    /// holds the lease: a connection still open here after the runner connected elsewhere (a poll session not yet timed
    /// out, a half-open socket) is stale, and is closed.
    /// </summary>
    public async Task<string?> ConnectedElsewhereAsync(string vmId, CancellationToken cancellationToken)
    {
        if (await leases.HolderAsync(LeaseName(vmId), cancellationToken) is not { } holder || holder == node.Id)
        {
            return null;
        }
        if (SessionOf(vmId) is { } stale)
        {
            stale.Close(RunnerProtocol.ClosedReplaced, "Another connection of this runner took over.");
        }
        return holder;
    }

    public string MirrorPath(string agentId) => Path.Combine(MirrorRoot, agentId, "output.log");

    /// <summary>Makes the empty mirror of a new agent's log, and lets the VM's runner send output for it.</summary>
    public void Expect(string vmId, string agentId)
    {
        var path = MirrorPath(agentId);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.Create(path).Dispose();
        Vm(vmId).Agents.TryAdd(agentId, new RunnerAgentReport("starting", null, 0));
    }

    /// <summary>Takes a new connection of the runner: the previous one, if any, is closed as replaced.</summary>
    public async Task AttachAsync(RunnerSession session, CancellationToken cancellationToken)
    {
        var vm = Vm(session.VmId);
        RunnerSession? previous;
        lock (vm.Gate)
        {
            previous = vm.Session;
            vm.Session = session;
        }
        previous?.Close(RunnerProtocol.ClosedReplaced, "Another connection of this runner took over.");
        // Its newest connection is the one: a node that still thinks it has the runner learns otherwise when it renews.
        await leases.TakeAsync(LeaseName(vm.Id), node.Id, Lease, cancellationToken);
        await RenewAsync(vm, force: true, cancellationToken);
        await SetStatusAsync(session.VmId, VmHealth.Online, null, cancellationToken);
        await vmEvents.UpdatedAsync(session.VmId, cancellationToken);
        RunnersLog.Connected(logger, session.VmId, session.Transport);
    }

    /// <summary>The transport of each runner connected here now.</summary>
    internal IEnumerable<string> ConnectedTransports() => _vms.Values.Select(v => v.Session?.Transport).OfType<string>();

    /// <summary>The connection ended: the VM shows offline; its agents run on under the lease.</summary>
    public async Task DetachAsync(RunnerSession session)
    {
        var vm = Vm(session.VmId);
        lock (vm.Gate)
        {
            if (vm.Session != session)
            {
                return; // replaced already
            }
            vm.Session = null;
        }
        session.Close(1000, "closed");
        await leases.ReleaseAsync(LeaseName(vm.Id), node.Id, CancellationToken.None);
        if (session.CloseCode is not RunnerProtocol.ClosedRevoked)
        {
            await SetStatusAsync(session.VmId, VmHealth.Offline,
                $"The runner disconnected at {time.GetUtcNow().UtcDateTime:u}; its agents keep running and count as lost if it is not back by {vm.LeaseExpiresAt:u}.", CancellationToken.None);
        }
        await vmEvents.UpdatedAsync(session.VmId, CancellationToken.None);
        RunnersLog.Disconnected(logger, session.VmId);
    }

    /// <summary>Ends the runner's connection at once (revoked: it must not come back with that credential).</summary>
    public void Disconnect(string vmId, int code, string reason)
    {
        if (_vms.TryGetValue(vmId, out var vm) && vm.Session is { } session)
        {
            session.Close(code, reason);
        }
    }

    /// <summary>One message from the runner.</summary>
    public async Task HandleAsync(RunnerSession session, RunnerMessage message, CancellationToken cancellationToken)
    {
        var vm = Vm(session.VmId);
        if (!session.HelloReceived && message.Type != RunnerProtocol.Hello)
        {
            session.Send(new RunnerMessage(RunnerProtocol.Error, Error: "Say hello first."));
            return;
        }
        switch (message.Type)
        {
            case RunnerProtocol.Hello:
                await HelloAsync(session, vm, message, cancellationToken);
                break;
            case RunnerProtocol.Heartbeat:
                await RenewAsync(vm, force: false, cancellationToken);
                break;
            case RunnerProtocol.Result:
                session.Complete(message);
                break;
            case RunnerProtocol.Output:
                Output(session, vm, message);
                break;
            case RunnerProtocol.State:
                if (Known(session, vm, message.AgentId) && message.State is "starting" or "running" or "exit" or "gone")
                {
                    vm.Agents[message.AgentId!] = new RunnerAgentReport(message.State, message.ExitCode, Math.Max(0, message.Size ?? 0));
                }
                break;
            case RunnerProtocol.TerminalOutput or RunnerProtocol.TerminalExit:
                terminals.Deliver(session, message);
                break;
            default:
                session.Send(new RunnerMessage(RunnerProtocol.Error, Error: $"Unknown message type '{PrintableText.Of(message.Type)}' (protocol version {RunnerProtocol.Version})."));
                break;
        }
    }

    private async Task HelloAsync(RunnerSession session, RunnerVm vm, RunnerMessage hello, CancellationToken cancellationToken)
    {
        if (hello.Version != RunnerProtocol.Version)
        {
            session.Send(new RunnerMessage(RunnerProtocol.Error, Error: $"This server speaks runner protocol version {RunnerProtocol.Version}, not {hello.Version}: run the covibe of the server's version."));
            session.Close(1002, "protocol version");
            return;
        }
        session.HelloReceived = true;
        var agents = await vmAgents.StartedOnAsync(session.VmId, cancellationToken);
        await using (var db = await dbs.CreateDbContextAsync(cancellationToken))
        {
            var row = await db.Vms.SingleAsync(v => v.Id == session.VmId, cancellationToken);
            row.RunnerHostname = PrintableText.OfOptional(hello.Hostname);
            if (PrintableText.OfOptional(hello.User) is { Length: > 0 } user)
            {
                row.Username = user; // the account agents and terminals run as there
            }
            await db.SaveChangesAsync(cancellationToken);
        }
        var follow = new List<RunnerFollow>();
        foreach (var agent in agents)
        {
            vm.Agents.TryAdd(agent.AgentId, new RunnerAgentReport("running", null, 0));
            // A node the runner never reached before (it moved here from another) starts the mirror from the beginning.
            Directory.CreateDirectory(Path.GetDirectoryName(MirrorPath(agent.AgentId))!, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var mirror = new FileInfo(MirrorPath(agent.AgentId));
            follow.Add(new RunnerFollow(agent.AgentId, new RunnerProcess(agent.RuntimeDirectory, agent.Pid ?? 0, agent.StartTime ?? 0), mirror.Exists ? mirror.Length : 0));
        }
        session.Send(new RunnerMessage(RunnerProtocol.Welcome, Version: RunnerProtocol.Version, VmId: session.VmId,
            HeartbeatSeconds: options.Value.HeartbeatSeconds, Follow: [.. follow]));
        foreach (var (agentId, signal) in vm.PendingSignals)
        {
            if (vm.PendingSignals.TryRemove(agentId, out _) && agents.FirstOrDefault(a => a.AgentId == agentId) is { Pid: { } pid } agent)
            {
                session.Send(SignalMessage(new AgentProcess(RunnerBackend.BackendName, agent.RuntimeDirectory, pid, agent.StartTime ?? 0, session.VmId), VmScripts.SignalName(signal)));
            }
        }
        await audit.WriteAsync(session.VmId, session.TeamId, VmAuditLog.Runner, null, "runner.connect",
            $"{session.Transport} from {PrintableText.OfOptional(hello.User) ?? "?"}@{PrintableText.OfOptional(hello.Hostname) ?? "?"}; {follow.Count} agents to follow", cancellationToken);
    }

    /// <summary>A <c>signal</c> request for the agent: <c>int</c>, <c>term</c>, <c>kill</c> (<see cref="VmScripts.SignalName"/>) or <c>eof</c>.</summary>
    internal static RunnerMessage SignalMessage(AgentProcess process, string signal) =>
        new(RunnerProtocol.Signal, AgentId: Path.GetFileName(process.RuntimeDirectory), Signal: signal, Process: ProcessOf(process));

    /// <summary>The agent's process as the runner knows it.</summary>
    internal static RunnerProcess ProcessOf(AgentProcess process) => new(process.RuntimeDirectory, process.Pid, process.StartTime);

    /// <summary>Appends output at its offset: what the mirror holds already is skipped, a gap is asked for again from the mirror's end.</summary>
    private void Output(RunnerSession session, RunnerVm vm, RunnerMessage message)
    {
        if (!Known(session, vm, message.AgentId) || message.Offset is not { } offset || offset < 0 || message.Data is null)
        {
            return;
        }
        byte[] data;
        try
        {
            data = Convert.FromBase64String(message.Data);
        }
        catch (FormatException)
        {
            session.Send(new RunnerMessage(RunnerProtocol.Error, AgentId: message.AgentId, Error: "'data' is not base64."));
            return;
        }
        var path = MirrorPath(message.AgentId!);
        lock (vm.Gate)
        {
            using var file = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
            var length = file.Length;
            if (offset > length)
            {
                // Something in between was lost: ask for it again from what we hold.
                session.Send(new RunnerMessage(RunnerProtocol.Follow, AgentId: message.AgentId, Offset: length));
                return;
            }
            var skip = (int)Math.Min(data.Length, length - offset);
            file.Write(data, skip, data.Length - skip);
        }
    }

    /// <summary>Whether the agent is one of this VM's: a runner speaks for its own VM's agents only.</summary>
    private bool Known(RunnerSession session, RunnerVm vm, string? agentId)
    {
        if (agentId is not null && vm.Agents.ContainsKey(agentId))
        {
            return true;
        }
        RunnersLog.ForeignAgent(logger, session.VmId, PrintableText.Of(agentId ?? ""));
        session.Send(new RunnerMessage(RunnerProtocol.Error, AgentId: agentId, Error: $"Agent '{PrintableText.Of(agentId ?? "")}' is not one of this VM's agents."));
        return false;
    }

    private async Task RenewAsync(RunnerVm vm, bool force, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        vm.LeaseExpiresAt = now + Lease;
        if (!force && now - vm.LastLeaseWrite < TimeSpan.FromSeconds(options.Value.HeartbeatSeconds))
        {
            return;
        }
        vm.LastLeaseWrite = now;
        if (!force && !await leases.HoldAsync(LeaseName(vm.Id), node.Id, Lease, cancellationToken) && vm.Session is { } stale)
        {
            // The runner connected to another node since (this connection is half-open): that one speaks for the VM now.
            stale.Close(RunnerProtocol.ClosedReplaced, "Another connection of this runner took over.");
            return;
        }
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        await db.Vms.Where(v => v.Id == vm.Id).ExecuteUpdateAsync(s => s.SetProperty(v => v.LastSeen, now), cancellationToken);
    }

    private async Task SetStatusAsync(string vmId, string status, string? error, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        await db.Vms.Where(v => v.Id == vmId).ExecuteUpdateAsync(s => s.SetProperty(v => v.Status, status).SetProperty(v => v.LastError, error), cancellationToken);
    }


}
