using System.CommandLine;
using System.Text;
using Covibe.Protocol;

namespace Covibe.Cli;

/// <summary><c>covibe preview set|status|logs|redeploy|cancel|open|rotate-secret|rm</c>: the team's shared preview.</summary>
internal static class PreviewCommands
{
    public static Command Create(CredentialStore store)
    {
        var preview = new Command("preview", "The team's shared preview: redeployed on every push to its branch, seen by the whole team");
        preview.Subcommands.Add(Set(store));
        preview.Subcommands.Add(Status(store));
        preview.Subcommands.Add(Logs(store));
        preview.Subcommands.Add(Redeploy(store));
        preview.Subcommands.Add(Cancel(store));
        preview.Subcommands.Add(Open(store));
        preview.Subcommands.Add(RotateSecret(store));
        preview.Subcommands.Add(Remove(store));
        return preview;
    }

    private static Command Set(CredentialStore store)
    {
        var url = new Argument<string>("repository") { Description = "The repository's https address, e.g. https://github.com/acme/app.git" };
        var branch = new Option<string?>("--branch") { Description = "The branch to follow (default main)" };
        var command = new Command("set", "Connect the team's repository (team owner); its branch deploys now and on every push") { url, branch };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var connected = await client.SendJsonAsync(HttpMethod.Put, "api/preview", new SetPreviewRequest(parse.GetValue(url), parse.GetValue(branch)),
                CovibeJsonContext.Default.SetPreviewRequest, CovibeJsonContext.Default.PreviewConnectedResponse, ct);
            PrintWebhook(connected);
            Console.WriteLine($"The first deploy of {connected.Preview.Branch} has started: follow it with `covibe preview logs -f`.");
        });
        return command;
    }

    private static Command RotateSecret(CredentialStore store)
    {
        var command = new Command("rotate-secret", "Give the webhook a new secret (team owner); the old one stops working at once");
        command.SetHandler(async (_, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            PrintWebhook(await client.PostAsync("api/preview/webhook-secret", CovibeJsonContext.Default.PreviewConnectedResponse, ct));
        });
        return command;
    }

    private static void PrintWebhook(PreviewConnectedResponse connected)
    {
        Console.WriteLine($"Add a webhook to {connected.Preview.RepositoryUrl} (GitHub: Settings > Webhooks > Add webhook):");
        Console.WriteLine($"  Payload URL:   {connected.WebhookUrl}");
        Console.WriteLine("  Content type:  application/json");
        Console.WriteLine($"  Secret:        {connected.WebhookSecret}");
        Console.WriteLine("  Events:        Just the push event");
        Console.WriteLine("The secret is shown this once (`covibe preview rotate-secret` makes a new one).");
    }

    private static Command Status(CredentialStore store)
    {
        var command = new Command("status", "What the preview serves, and the deploy under way");
        command.SetHandler(async (_, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var p = await client.GetAsync("api/preview", CovibeJsonContext.Default.PreviewDto, ct);
            Console.WriteLine($"{p.RepositoryUrl} ({p.Branch}): {p.Status}");
            if (p.Commit is { } commit)
            {
                Console.WriteLine($"  live:     {Short(commit)} since {CliCommon.Local(p.DeployedAt!.Value)} at {p.Url}");
            }
            if (p.Current is { } current)
            {
                Console.WriteLine($"  now:      {Short(current.Commit)} {current.Status} ({current.Trigger}){(current.ProjectType is { } type ? ", " + type : "")}");
            }
            if (p.Error is { } error)
            {
                Console.WriteLine($"  failed:   {Short(p.Latest!.Commit)}: {error}");
            }
            if (p.CheckError is { } check)
            {
                Console.WriteLine($"  branch check: {check}");
            }
        });
        return command;
    }

    private static Command Logs(CredentialStore store)
    {
        var deploy = new Argument<string?>("deploy") { Description = "A deploy's id (default: the one under way, else the latest)", Arity = ArgumentArity.ZeroOrOne };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing until the deploy is live or has failed (exit code 1 then)" };
        var command = new Command("logs", "A deploy's build and app output") { deploy, follow };
        command.SetHandler(async (parse, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var id = parse.GetValue(deploy);
            if (id is null)
            {
                var p = await client.GetAsync("api/preview", CovibeJsonContext.Default.PreviewDto, ct);
                id = (p.Current ?? p.Latest)?.Id ?? throw new CliException("The preview has no deploy yet.");
            }
            var decoder = Encoding.UTF8.GetDecoder();
            using var stdout = Console.OpenStandardOutput();
            long from = 0;
            string? status = null;
            while (true)
            {
                var wait = parse.GetValue(follow) ? 25 : 0;
                var (bytes, next, complete, headers) = await client.GetPageAsync($"api/preview/deploys/{id}/log?from={from}&wait={wait}", "Covibe-Log-", ct);
                await stdout.WriteAsync(bytes, ct);
                await stdout.FlushAsync(ct);
                from = next;
                var now = headers.GetValues("Covibe-Deploy-Status").Single();
                if (now != status && status is not null)
                {
                    await Console.Error.WriteLineAsync($"[covibe] deploy {now}");
                }
                status = now;
                if (!parse.GetValue(follow) && bytes.Length == 0)
                {
                    return;
                }
                if (parse.GetValue(follow) && bytes.Length == 0 && status is "live" or "failed" or "cancelled" or "skipped" or "replaced")
                {
                    Environment.ExitCode = status is "live" or "replaced" ? 0 : 1;
                    if (status != "live")
                    {
                        var p = await client.GetAsync("api/preview", CovibeJsonContext.Default.PreviewDto, ct);
                        await Console.Error.WriteLineAsync($"[covibe] deploy {status}" + (p.Latest?.Id == id && p.Latest.Error is { } e ? $": {e}" : ""));
                    }
                    return;
                }
                if (complete)
                {
                    return;
                }
            }
        });
        return command;
    }

    private static Command Redeploy(CredentialStore store)
    {
        var command = new Command("redeploy", "Deploy the branch's head now (team owner), also when it is live or failed before");
        command.SetHandler(async (_, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var p = await client.PostAsync("api/preview/redeploy", CovibeJsonContext.Default.PreviewDto, ct);
            Console.WriteLine($"Queued {Short(p.Current?.Commit ?? "")}: follow it with `covibe preview logs -f`.");
        });
        return command;
    }

    private static Command Cancel(CredentialStore store)
    {
        var command = new Command("cancel", "Stop the deploy under way and drop the queued ones (team owner)");
        command.SetHandler(async (_, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var p = await client.PostAsync("api/preview/cancel", CovibeJsonContext.Default.PreviewDto, ct);
            Console.WriteLine($"Cancelled. The preview is {p.Status}" + (p.Commit is { } c ? $" with {Short(c)}." : "."));
        });
        return command;
    }

    private static Command Open(CredentialStore store)
    {
        var command = new Command("open", "Print a one-time link that opens the preview in a browser (valid about a minute)");
        command.SetHandler(async (_, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var link = await client.PostAsync("api/preview/link", CovibeJsonContext.Default.PreviewLinkResponse, ct);
            Console.WriteLine(link.Url);
        });
        return command;
    }

    private static Command Remove(CredentialStore store)
    {
        var command = new Command("rm", "Disconnect the repository and stop the preview (team owner)");
        command.SetHandler(async (_, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            await client.SendAsync(HttpMethod.Delete, "api/preview", null, ct);
            Console.WriteLine("The preview is disconnected and stopped.");
        });
        return command;
    }

    private static string Short(string commit) => commit.Length > 7 ? commit[..7] : commit;
}
