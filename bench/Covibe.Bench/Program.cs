// The benchmarks of docs/benchmarks.md, each against real processes on loopback:
//   (default) or fanout   agent output fan-out to N subscribers (issues 3, 11); see FanOutBench.cs
//   compare               the same against a bare Kestrel broadcaster and the Node baselines (issue 11)
//   bare-server           the bare Kestrel broadcaster itself (BareKestrel.cs), started by compare
//   terminal              terminal echo and throughput (issue 6); see TerminalBench.cs
//   start                 agent start and terminal open, sandbox beside container (issue 10); see StartBench.cs
//   idle                  memory per idle joined hub connection (issue 11); see IdleBench.cs
//   preview               push-to-live time and the switch-over gap of the shared preview (issue 12); see PreviewBench.cs
//   boxes                 warm-pool claims, cold provisioning and refill of boxes (issue 13); see BoxBench.cs
//   claims                the warm-pool claim path alone, many bursts of claims at once (issues 13, 23); see ClaimBench.cs
//   runner                agent output through a runner VM beside SSH and this server (issue 14); see RunnerBench.cs
//   changes               agents' changes live (write to agent_changes, 10 agents) and a work tree's cost beside a clone (issue 25); see ChangesBench.cs
//   crowd                 chat round trips while one member holds 1,000 hub sockets (issue 28); see CrowdBench.cs
//   approvals             a permission request to the approver's screen, and the answer to the agent going on, one node and two (issue 26); see ApprovalBench.cs
// Run through bench/run, which installs the Node baselines' packages first.

switch (args.FirstOrDefault())
{
    case "terminal":
        await TerminalBench.RunAsync(args);
        break;
    case "start":
        await StartBench.RunAsync(args);
        break;
    case "idle":
        await IdleBench.RunAsync(args);
        break;
    case "preview":
        await PreviewBench.RunAsync(args);
        break;
    case "boxes":
        await BoxBench.RunAsync(args);
        break;
    case "claims":
        await ClaimBench.RunAsync(args);
        break;
    case "cluster":
        await ClusterBench.RunAsync(args);
        break;
    case "changes":
        await ChangesBench.RunAsync(args);
        break;
    case "crowd":
        await CrowdBench.RunAsync(args);
        break;
    case "approvals":
        await ApprovalBench.RunAsync(args);
        break;
    case "runner":
        await RunnerBench.RunAsync(args);
        break;
    case "bare-server":
        await BareKestrel.RunAsync(args);
        break;
    case "compare":
        await FanOutBench.RunAsync(args, compare: true);
        break;
    default:
        await FanOutBench.RunAsync(args, compare: false);
        break;
}
