using System.Net.WebSockets;
using Covibe.Protocol;
using Covibe.Server.Features.Runners;

namespace Covibe.Server.Tests;

/// <summary>A runner's session is bounded the same way as every WebSocket's: a runner that does not take its messages loses the connection, never a message quietly.</summary>
public sealed class RunnerSessionTests
{
    [Fact]
    public void APollingRunnerThatLeavesItsMailboxFull_IsDisconnected_RatherThanLosingMessagesQuietly()
    {
        using var session = RunnerSession.OverPolls("vm", "team", "owner", "poll-1", TimeProvider.System.GetUtcNow().UtcDateTime);
        var message = new RunnerMessage(RunnerProtocol.Follow, AgentId: "a", Offset: 0);
        for (var i = 0; i < RunnerSession.QueueCapacity; i++)
        {
            session.Send(message).ShouldBeTrue();
        }

        session.Send(message).ShouldBeFalse();

        // The session ends (the runner's next poll gets a new one and says hello again, resuming from the server's offsets).
        session.Closed.IsCancellationRequested.ShouldBeTrue();
        session.CloseCode.ShouldBe((int)WebSocketCloseStatus.PolicyViolation);
        session.CloseReason.ShouldNotBeNull().ShouldContain("untaken");
        session.Send(message).ShouldBeFalse();
    }
}
