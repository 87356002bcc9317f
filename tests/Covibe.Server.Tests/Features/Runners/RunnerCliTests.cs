using System.Text.RegularExpressions;
using Covibe.Server.Tests.Infrastructure;

namespace Covibe.Server.Tests;

/// <summary>A runner VM from the command line, as its owner would set one up: add, run the printed command on the VM, use, rotate, audit, revoke.</summary>
public sealed partial class RunnerCliTests(SshServer vm) : IClassFixture<SshServer>
{
    [Fact]
    public async Task Owner_AddsARunnerVm_RunsThePrintedCommandThere_RotatesAuditsAndRevokesIt()
    {
        await using var server = await TestServer.StartAsync(settings: RunnerTests.Settings(vm));
        var directory = StartupTests.TempDirectory();
        var cli = new CliRunner(directory);
        var url = server.Url.ToString().TrimEnd('/');
        (await cli.RunAsync(TestServer.Password, "team", "create", "--server", url, "--name", "Runners", "--user-name", "Ola", "--email", "ola@example.com", "--password-stdin")).ExitCode.ShouldBe(0);

        var added = await cli.RunAsync(null, "vm", "add", "ci-box", "--runner");
        added.ExitCode.ShouldBe(0, added.Stderr);
        var printed = RunnerLine().Match(added.Stdout);
        printed.Success.ShouldBeTrue(added.Stdout);
        printed.Groups["server"].Value.ShouldBe(url);
        (await cli.RunAsync(null, "vm", "add", "half", "--host", "127.0.0.1")).Stderr.ShouldContain("--runner");
        // A runner sends its credential with every request: never over plain HTTP to another machine, unless told to.
        var plain = await cli.RunAsync(null, "runner", "--server", "http://covibe.example.com", "--token", printed.Groups["token"].Value);
        (plain.ExitCode, plain.Stderr).ShouldSatisfyAllConditions(p => p.ExitCode.ShouldBe(2), p => p.Stderr.ShouldContain("https://"));

        // On the VM: exactly the printed command.
        await using var machine = RunnerMachine.Create(vm);
        machine.Start(["--server", printed.Groups["server"].Value, "--token", printed.Groups["token"].Value]);
        await Eventually.UntilAsync(async () => (await cli.RunAsync(null, "vm", "ls")).Stdout, o => o.Contains("online"), "the runner VM shows online in vm ls");
        (await cli.RunAsync(null, "vm", "ls")).Stdout.ShouldContain(machine.User); // where its runner runs (the table may wrap the rest)
        var run = await cli.RunAsync(null, "agent", "spawn", "count", "--type", "lines", "--vm", "ci-box", "--raw", "-f");
        run.ExitCode.ShouldBe(0, run.Stderr);
        run.Stdout.ShouldContain("20000");
        (run.Stdout + run.Stderr).ShouldContain("on your VM, through its runner");

        // Rotation while connected: the runner saves the new credential and proves it; it keeps working.
        (await cli.RunAsync(null, "vm", "rotate", "ci-box")).ExitCode.ShouldBe(0);
        await Eventually.UntilAsync(async () => (await cli.RunAsync(null, "vm", "audit", "ci-box")).Stdout, o => o.Contains("credential.rotated"), "the runner rotates its credential");
        machine.Output.ShouldContain("credential rotated");
        (await cli.RunAsync(null, "agent", "spawn", "again", "--type", "lines", "--vm", "ci-box", "--raw", "-f")).ExitCode.ShouldBe(0);
        var audit = (await cli.RunAsync(null, "vm", "audit", "ci-box")).Stdout;
        foreach (var action in (string[])["vm.register", "runner.register", "runner.connect", "agent.start", "credential.rotate-request", "credential.rotate"])
        {
            audit.ShouldContain(action);
        }

        // Revoked: it stops, and a fresh token registers it again.
        (await cli.RunAsync(null, "vm", "revoke", "ci-box")).ExitCode.ShouldBe(0);
        (await machine.WaitForExitAsync(TimeSpan.FromSeconds(30))).ShouldBe(3);
        var again = RunnerLine().Match((await cli.RunAsync(null, "vm", "token", "ci-box")).Stdout);
        again.Success.ShouldBeTrue();
        machine.Start(["--server", url, "--token", again.Groups["token"].Value]);
        await Eventually.UntilAsync(async () => (await cli.RunAsync(null, "vm", "ls")).Stdout, o => o.Contains("online"), "registered again");
        StartupTests.Delete(directory);
    }

    [GeneratedRegex(@"covibe runner --server (?<server>\S+) --token (?<token>cvreg_[A-Za-z0-9_-]+)")]
    private static partial Regex RunnerLine();
}
