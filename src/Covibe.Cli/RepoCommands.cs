using System.CommandLine;
using Covibe.Protocol;

namespace Covibe.Cli;

/// <summary>
/// <c>covibe repo</c>: the team's repository; <c>covibe repo key</c> makes its deploy key; <c>covibe repo connect URL</c>
/// connects it (team owner) with that key, a key file, or a token read from stdin; <c>covibe repo disconnect</c>.
/// </summary>
internal static class RepoCommands
{
    public static Command Create(CredentialStore store)
    {
        var command = new Command("repo", "Your team's repository: where agents' branches start, and what the preview and boxes fetch");
        command.SetHandler(async (_, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            Print(await client.GetAsync("api/team/repository", CovibeJsonContext.Default.TeamRepositoryResponse, ct));
        });

        var key = new Command("key", "Make your team a deploy key (team owner) and print its public half to add to the repository, with write access");
        key.SetHandler(async (_, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var made = await client.PostAsync("api/team/repository/deploy-key", CovibeJsonContext.Default.DeployKeyResponse, ct);
            Console.WriteLine(made.PublicKey);
            Console.Error.WriteLine($"Add this public key ({made.Fingerprint}) to the repository as a deploy key with write access, then: covibe repo connect git@host:owner/app.git");
        });
        command.Subcommands.Add(key);

        var url = new Argument<string>("url") { Description = "The repository: git@github.com:owner/app.git or ssh://... (with the team's deploy key), or https://... (public, or with --token-stdin)" };
        var branch = new Option<string?>("--branch") { Description = "The base branch agents start from and merge into (default: the repository's default branch)" };
        var tokenStdin = new Option<bool>("--token-stdin") { Description = "Read an HTTPS access token from standard input (it needs read and write access to the contents)" };
        var username = new Option<string?>("--username") { Description = "The user name sent with the token (default x-access-token, as GitHub takes it)" };
        var keyFile = new Option<string?>("--key-file") { Description = "Log in over SSH with this private key instead of the team's deploy key" };
        var hostKey = new Option<string?>("--host-key") { Description = "The SSH host key fingerprint you expect (SHA256:...); otherwise the one offered now is pinned" };
        var connect = new Command("connect", "Connect your team's repository (team owner): the server checks that it answers before keeping it") { url, branch, tokenStdin, username, keyFile, hostKey };
        connect.SetHandler(async (parse, ct) =>
        {
            string? token = null;
            if (parse.GetValue(tokenStdin))
            {
                token = (await Console.In.ReadLineAsync(ct))?.Trim();
                if (string.IsNullOrEmpty(token))
                {
                    throw new CliException("--token-stdin was given but standard input is empty.");
                }
            }
            string? privateKey = null;
            if (parse.GetValue(keyFile) is { } path)
            {
                try
                {
                    privateKey = await File.ReadAllTextAsync(path, ct);
                }
                catch (IOException e)
                {
                    throw new CliException($"Cannot read the key file: {e.Message}");
                }
            }
            using var client = CovibeClient.ForSavedLogin(store);
            Print(await client.SendJsonAsync(HttpMethod.Put, "api/team/repository",
                new ConnectRepositoryRequest(parse.GetValue(url), parse.GetValue(branch), token, parse.GetValue(username), privateKey, parse.GetValue(hostKey)),
                CovibeJsonContext.Default.ConnectRepositoryRequest, CovibeJsonContext.Default.TeamRepositoryResponse, ct));
        });
        command.Subcommands.Add(connect);

        var trees = new Command("trees", "What the team's repository takes on the server's disk: its mirror and each agent's work tree kept (team owner)");
        trees.SetHandler(async (_, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            var disk = await client.GetAsync("api/team/worktrees", CovibeJsonContext.Default.TeamWorktreesResponse, ct);
            Console.WriteLine($"{Megabytes(disk.TotalBytes)} in all: the team's mirror {Megabytes(disk.MirrorBytes)}, {disk.Trees.Length} of at most {disk.Max} work trees kept.");
            foreach (var tree in disk.Trees)
            {
                Console.WriteLine($"  {tree.AgentId[..8]}  {tree.WorkBranch}  {tree.Status}  {Megabytes(tree.Bytes)}");
            }
        });
        command.Subcommands.Add(trees);

        var disconnect = new Command("disconnect", "Disconnect your team's repository and forget its credential (team owner)");
        disconnect.SetHandler(async (_, ct) =>
        {
            using var client = CovibeClient.ForSavedLogin(store);
            await client.SendAsync(HttpMethod.Delete, "api/team/repository", null, ct);
            Console.WriteLine("Disconnected: the team's repository and its credential are forgotten.");
        });
        command.Subcommands.Add(disconnect);
        return command;
    }

    private static string Megabytes(long bytes) => $"{bytes / 1024.0 / 1024.0:0.0} MB";

    private static void Print(TeamRepositoryResponse repository)
    {
        if (repository.Url is null)
        {
            Console.WriteLine("No repository connected yet.");
        }
        else
        {
            var auth = repository.Auth switch { "ssh-key" => "over SSH with the team's deploy key", "token" => "with an access token", _ => "without a credential" };
            Console.WriteLine($"Repository: {repository.Url} (base branch {repository.Branch}), {auth}.");
            Console.WriteLine($"Connected by {repository.ConnectedBy} on {(repository.ConnectedAt is { } at ? CliCommon.Local(at) : "?")}.");
        }
        foreach (var hostKey in repository.HostKeys)
        {
            Console.WriteLine($"Host key pinned: {hostKey.Type} {hostKey.Fingerprint}");
        }
        if (repository.PublicKey is { } publicKey)
        {
            Console.WriteLine($"Deploy key ({repository.KeyFingerprint}):");
            Console.WriteLine("  " + publicKey);
        }
    }
}
