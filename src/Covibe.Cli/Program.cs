using System.CommandLine;
using Covibe.Cli;

// The `covibe` executable: `serve` runs the server; the rest are its clients.
var store = CredentialStore.Default();
var root = new RootCommand("Covibe: run AI coding agents as a team. Docs: README.md, docs/.")
{
    ServeCommand.Create(),
    TerminaldCommand.Create(),
    RunnerCommand.Create(store),
    TeamCommands.Create(store),
    ChatCommands.Create(store),
    AgentCommands.Create(store),
    VmCommands.Create(store),
    PreviewCommands.Create(store),
    BoxCommands.Box(store),
    BoxCommands.Pool(store),
    TerminalCommand.Create(store),
    SecretsCommand.Create(),
    BackupCommands.Backup(),
    BackupCommands.Restore(),
    ImageCommand.Create(),
    EnvCommands.Env(store),
    EnvCommands.Containers(),
    EgressCommands.Create(store),
    RepoCommands.Create(store),
    MockAgent.Create(),
};
foreach (var command in AccountCommands.Create(store))
{
    root.Subcommands.Add(command);
}
return await root.Parse(args).InvokeAsync();
