using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Covibe.Protocol;

namespace Covibe.Cli;

/// <summary><c>covibe box request|ls|show|log|rm</c> and <c>covibe pool ls|set|rm</c>: seed 002's boxes and warm pools.</summary>
internal static class BoxCommands
{
    public static Command Box(CredentialStore store)
    {
        var box = new Command("box", "Coding boxes: a repository and branch ready in a container, for your agents and terminals");
        box.Subcommands.Add(Request(store));
        box.Subcommands.Add(List(store));
        box.Subcommands.Add(Show(store));
        box.Subcommands.Add(Log(store));
        box.Subcommands.Add(Release(store));
        return box;
    }

    public static Command Pool(CredentialStore store)
    {
        var pool = new Command("pool", "Warm pools: boxes kept ready per repository and branch, so a request is answered at once");
        pool.Subcommands.Add(Pools(store));
        pool.Subcommands.Add(SetPool(store));
        pool.Subcommands.Add(RemovePool(store));
        return pool;
    }

    private static Command Request(CredentialStore store)
    {
        var repo = new Argument<string>("repository") { Description = "The repository's address, e.g. https://github.com/acme/app.git" };
        var branch = new Option<string?>("--branch", "-b") { Description = "The branch (default main)" };
        var envFile = new Option<string?>("--env-file") { Description = "A .env file to put in the box (sent encrypted at rest; never written to the server's disk)" };
        var tag = new Option<string?>("--requested-by") { Description = "A tag for the box: a ticket, a job (seed 002's requestedBy)" };
        var noWait = new Option<bool>("--no-wait") { Description = "Print the box's id and return while it provisions" };
        var vm = new Option<string?>("--vm") { Description = "Make it on a VM instead of in a container: one of yours (name or id, see `covibe vm ls`), or `pool` for the operator's VMs" };
        var command = new Command("request", "Get a box: at once from a warm pool, else watch it provision (clone, devcontainer, env, ready)") { repo, branch, envFile, tag, noWait, vm };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            string? env = null;
            if (parse.GetValue(envFile) is { } path)
            {
                env = path == "-" ? await Console.In.ReadToEndAsync(ct) : await File.ReadAllTextAsync(path, ct);
            }
            var vmId = parse.GetValue(vm) is { } given ? given == "pool" ? "pool" : await VmCommands.ResolveAsync(client, given, ct) : null;
            var watch = Stopwatch.StartNew();
            var box = await client.PostAsync("api/boxes", new BoxRequest(parse.GetValue(repo), parse.GetValue(branch), parse.GetValue(tag), env, VmId: vmId),
                CovibeJsonContext.Default.BoxRequest, CovibeJsonContext.Default.BoxDto, ct);
            if (box.Status == "ready")
            {
                await Console.Error.WriteLineAsync($"Box {box.Id} is ready, from the warm pool ({watch.Elapsed.TotalMilliseconds:0} ms).");
            }
            else if (!parse.GetValue(noWait))
            {
                box = await FollowAsync(client, box, ct);
            }
            else
            {
                await Console.Error.WriteLineAsync($"Box {box.Id} is provisioning; follow it with `covibe box show {box.Id}`.");
            }
            Console.WriteLine(box.Id);
            if (box.Status == "failed")
            {
                throw new CliException($"The box could not be provisioned: {box.Error} (`covibe box log {box.Id}` shows what happened).");
            }
            if (box.Status == "ready")
            {
                await Console.Error.WriteLineAsync($"Run agents in it with `covibe agent spawn --box {box.Id} ...`, or open a terminal with `covibe terminal --box {box.Id}`.");
            }
        });
        return command;
    }

    /// <summary>Shows each provisioning step as it is reached (steps passed between two looks too), with the box's log below, until the box is ready or failed.</summary>
    private static async Task<BoxDto> FollowAsync(CovibeClient client, BoxDto box, CancellationToken cancellationToken)
    {
        var shown = 0;
        long position = 0;
        var watch = Stopwatch.StartNew();
        while (true)
        {
            List<string> steps = box.Backend == "vm"
                ? ["queued", "clone", .. box.HasEnv ? new[] { "env" } : [], "ready"]
                : ["queued", "clone", box.Devcontainer ? "devcontainer" : "container", .. box.HasEnv ? new[] { "env" } : [], "ready"];
            var reached = box.Step == "failed" ? shown : steps.IndexOf(box.Step) + 1;
            for (; shown < reached; shown++)
            {
                var label = steps[shown] switch
                {
                    "queued" => "waiting for a free provisioner",
                    "clone" => box.Backend == "vm" ? $"cloning {box.Branch} of {box.RepoUrl} on the VM" : $"fetching {box.Branch} of {box.RepoUrl}",
                    "container" => "starting the box (default image) and cloning inside it",
                    "devcontainer" => "devcontainer up, clone, lifecycle commands",
                    "env" => "writing the .env",
                    _ => "ready",
                };
                await Console.Error.WriteLineAsync($"[{shown + 1}/{steps.Count}] {label} ({watch.Elapsed.TotalSeconds:0.0} s)");
            }
            var log = await client.GetAsync($"api/boxes/{box.Id}/log?from={position.ToString(CultureInfo.InvariantCulture)}", CovibeJsonContext.Default.BoxLogResponse, cancellationToken);
            foreach (var line in log.Text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("[covibe]", StringComparison.Ordinal)))
            {
                await Console.Error.WriteLineAsync($"      {line.TrimEnd('\r')}");
            }
            position = log.Next;
            if (box.Status != "provisioning")
            {
                return box;
            }
            await Task.Delay(300, cancellationToken);
            box = await client.GetAsync($"api/boxes/{box.Id}", CovibeJsonContext.Default.BoxDto, cancellationToken);
        }
    }

    private static Command List(CredentialStore store)
    {
        var all = new Option<bool>("--all", "-a") { Description = "Also released boxes" };
        var command = new Command("ls", "Your team's boxes") { all };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var boxes = (await client.GetAsync($"api/boxes?all={(parse.GetValue(all) ? "true" : "false")}", CovibeJsonContext.Default.BoxListResponse, ct)).Boxes;
            if (boxes.Length == 0)
            {
                Console.WriteLine("No boxes. Request one with `covibe box request <repository>`.");
                return;
            }
            Console.WriteLine($"{"ID",-32}  {"STATUS",-12}  {"HOLDER",-12}  {"BRANCH",-16}  REPOSITORY");
            foreach (var b in boxes)
            {
                var status = b.Status == "provisioning" ? $"{b.Step}…" : b.Status;
                Console.WriteLine($"{b.Id,-32}  {status,-12}  {b.Holder?.Name ?? "-",-12}  {b.Branch,-16}  {b.RepoUrl}");
            }
        });
        return command;
    }

    private static Command Show(CredentialStore store)
    {
        var id = new Argument<string>("box") { Description = "The box's id" };
        var command = new Command("show", "One box: its status, commit, where its repository is, why it failed") { id };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var b = await client.GetAsync($"api/boxes/{parse.GetValue(id)}", CovibeJsonContext.Default.BoxDto, ct);
            var text = new StringBuilder();
            text.AppendLine(CultureInfo.InvariantCulture, $"Box {b.Id}: {b.Status}{(b.Status == "provisioning" ? $" ({b.Step})" : "")}");
            text.AppendLine(CultureInfo.InvariantCulture, $"  repository:  {b.RepoUrl} ({b.Branch}{(b.Commit is { } c ? " at " + c[..Math.Min(12, c.Length)] : "")})");
            text.AppendLine(CultureInfo.InvariantCulture, $"  holder:      {b.Holder?.Name ?? "-"}{(b.RequestedBy is { } tag ? $" for {tag}" : "")}");
            var where = b.Backend == "vm"
                ? $"  runs on:     a VM, repository at {b.Workspace}"
                : $"  runs in:     {(b.Devcontainer ? "its dev container" : "the default image")}{(b.Image is { } image ? $" ({image})" : "")}, repository at {b.Workspace ?? "/workspace"}";
            text.AppendLine(where);
            text.AppendLine(CultureInfo.InvariantCulture, $"  .env:        {(b.HasEnv ? "yes (in the box's memory)" : "none")}");
            if (b.FromPool)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"  from a pool: claimed in {b.ClaimMs:0.0} ms");
            }
            if (b.Error is { } error)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"  error:       {error}");
            }
            Console.Write(text);
        });
        return command;
    }

    private static Command Log(CredentialStore store)
    {
        var id = new Argument<string>("box") { Description = "The box's id" };
        var command = new Command("log", "What provisioning the box printed (clone, devcontainer up, lifecycle commands)") { id };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            long position = 0;
            while (true)
            {
                var log = await client.GetAsync($"api/boxes/{parse.GetValue(id)}/log?from={position.ToString(CultureInfo.InvariantCulture)}", CovibeJsonContext.Default.BoxLogResponse, ct);
                Console.Write(log.Text);
                if (log.Next == position || log.Complete)
                {
                    return;
                }
                position = log.Next;
            }
        });
        return command;
    }

    private static Command Release(CredentialStore store)
    {
        var id = new Argument<string>("box") { Description = "The box's id" };
        var command = new Command("rm", "Release a box: its agents stop, its container and files are removed") { id };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            await client.SendAsync(HttpMethod.Delete, $"api/boxes/{parse.GetValue(id)}", null, ct);
            Console.WriteLine($"Released box {parse.GetValue(id)}.");
        });
        return command;
    }

    private static Command Pools(CredentialStore store)
    {
        var command = new Command("ls", "The team's pools: desired, ready, provisioning, claimed, failed, claims, misses, claim latency");
        command.SetHandler(async (_, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var pools = (await client.GetAsync("api/pools", CovibeJsonContext.Default.PoolListResponse, ct)).Pools;
            if (pools.Length == 0)
            {
                Console.WriteLine("No pools. The team owner sets one with `covibe pool set <repository> --min 2 --max 6`.");
                return;
            }
            foreach (var p in pools)
            {
                Console.WriteLine($"{p.RepoUrl} ({p.BaseBranch}){(p.Backend == "vm" ? " on the operator's VMs" : "")}{(p.Source == "config" ? " [operator's]" : "")}");
                Console.WriteLine($"  desired {p.MinStandby} ready (at most {p.MaxInstances}): {p.Ready} ready, {p.Provisioning} provisioning, {p.Claimed} claimed, {p.Failed} failed in the last hour");
                Console.WriteLine($"  claims {p.Claims}, misses {p.Misses}" + (p.ClaimP50Ms is { } p50 ? $", claim p50 {p50:0.0} ms, p99 {p.ClaimP99Ms:0.0} ms" : ""));
                if (p.Paused)
                {
                    Console.WriteLine($"  PAUSED: {p.PausedReason}");
                }
                else if (p.LastError is { } error)
                {
                    Console.WriteLine($"  last error: {error}{(p.ResumeAt is { } at ? $" (next try {CliCommon.Local(at)})" : "")}");
                }
            }
        });
        return command;
    }

    private static Command SetPool(CredentialStore store)
    {
        var repo = new Argument<string>("repository") { Description = "The repository's address" };
        var branch = new Option<string?>("--branch", "-b") { Description = "The base branch (default main)" };
        var min = new Option<int>("--min") { Description = "Boxes to keep ready (minStandby)", DefaultValueFactory = _ => 1 };
        var max = new Option<int>("--max") { Description = "Most boxes at once, ready and claimed (maxInstances)", DefaultValueFactory = _ => 4 };
        var backend = new Option<string?>("--backend") { Description = "container (default), or vm: boxes on the operator's VM pool" };
        var command = new Command("set", "Add or change one of the team's pools (team owner)") { repo, branch, min, max, backend };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var branchName = parse.GetValue(branch) ?? "main";
            var specs = await OwnPoolsAsync(client, ct);
            specs.RemoveAll(s => Same(s, parse.GetValue(repo)!, branchName));
            specs.Add(new PoolSpec(parse.GetValue(repo), branchName, parse.GetValue(min), parse.GetValue(max), parse.GetValue(backend)));
            await client.SendJsonAsync(HttpMethod.Put, "api/pools", specs.ToArray(), CovibeJsonContext.Default.PoolSpecArray, CovibeJsonContext.Default.PoolListResponse, ct);
            Console.WriteLine($"Pool set: {parse.GetValue(min)} ready, at most {parse.GetValue(max)}. Watch it fill with `covibe pool ls`.");
        });
        return command;
    }

    private static Command RemovePool(CredentialStore store)
    {
        var repo = new Argument<string>("repository") { Description = "The repository's address" };
        var branch = new Option<string?>("--branch", "-b") { Description = "The base branch (default main)" };
        var command = new Command("rm", "Remove one of the team's pools (team owner); its waiting boxes are released, claimed ones stay") { repo, branch };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var specs = await OwnPoolsAsync(client, ct);
            if (specs.RemoveAll(s => Same(s, parse.GetValue(repo)!, parse.GetValue(branch) ?? "main")) == 0)
            {
                throw new CliException("The team has no such pool of its own (`covibe pool ls`).");
            }
            await client.SendJsonAsync(HttpMethod.Put, "api/pools", specs.ToArray(), CovibeJsonContext.Default.PoolSpecArray, CovibeJsonContext.Default.PoolListResponse, ct);
            Console.WriteLine("Pool removed.");
        });
        return command;
    }

    /// <summary>The team's own pools (not the operator's), as the list PUT /api/pools replaces.</summary>
    private static async Task<List<PoolSpec>> OwnPoolsAsync(CovibeClient client, CancellationToken cancellationToken) =>
        [.. (await client.GetAsync("api/pools", CovibeJsonContext.Default.PoolListResponse, cancellationToken)).Pools
            .Where(p => p.Source == "api").Select(p => new PoolSpec(p.RepoUrl, p.BaseBranch, p.MinStandby, p.MaxInstances, p.Backend))];

    private static bool Same(PoolSpec spec, string repo, string branch) => spec.RepoUrl == repo.TrimEnd('/') && spec.BaseBranch == branch;
}
