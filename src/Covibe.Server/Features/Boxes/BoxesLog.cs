namespace Covibe.Server.Features.Boxes;

// Ids, steps and errors only: never a .env, a request body or a box's output.
internal static partial class BoxesLog
{
    [LoggerMessage(7001, LogLevel.Information, "Box {BoxId} of team {TeamId} claimed from pool {PoolId} by user {UserId} in {Milliseconds:0.0} ms")]
    public static partial void Claimed(ILogger logger, string boxId, string teamId, string poolId, string userId, double milliseconds);

    [LoggerMessage(7002, LogLevel.Information, "Box {BoxId} of team {TeamId}: {Step}")]
    public static partial void Step(ILogger logger, string boxId, string teamId, string step);

    [LoggerMessage(7003, LogLevel.Warning, "Box {BoxId} of team {TeamId} failed to provision: {Error}")]
    public static partial void Failed(ILogger logger, string boxId, string teamId, string error);

    [LoggerMessage(7004, LogLevel.Information, "Box {BoxId} of team {TeamId} released by user {UserId}")]
    public static partial void Released(ILogger logger, string boxId, string teamId, string userId);

    [LoggerMessage(7005, LogLevel.Warning, "Pool {PoolId} of team {TeamId} paused: {Reason}")]
    public static partial void PoolPaused(ILogger logger, string poolId, string teamId, string reason);

    [LoggerMessage(7006, LogLevel.Information, "Pool {PoolId}: {Created} box(es) to provision, {Retired} retired")]
    public static partial void Reconciled(ILogger logger, string poolId, int created, int retired);

    [LoggerMessage(7007, LogLevel.Error, "The pool reconciler failed")]
    public static partial void ReconcileFailed(ILogger logger, Exception exception);

    [LoggerMessage(7008, LogLevel.Error, "Provisioning box {BoxId} failed unexpectedly")]
    public static partial void ProvisionCrashed(ILogger logger, string boxId, Exception exception);

    [LoggerMessage(7009, LogLevel.Warning, "Cleaning up box {BoxId} failed: {Error}")]
    public static partial void CleanupFailed(ILogger logger, string boxId, string error);

    [LoggerMessage(7010, LogLevel.Information, "Box {BoxId} picked up again after an interruption (attempt {Attempt})")]
    public static partial void Resumed(ILogger logger, string boxId, int attempt);

    [LoggerMessage(7011, LogLevel.Warning, "Box {BoxId} waits for its container engine: {Reason}")]
    public static partial void WaitingForEngine(ILogger logger, string boxId, string reason);

    [LoggerMessage(7012, LogLevel.Information, "Box {BoxId} of team {TeamId} started again: its .env is written into it again")]
    public static partial void EnvRestored(ILogger logger, string boxId, string teamId);

    [LoggerMessage(7013, LogLevel.Warning, "Keeping {Kind} boxes whole was interrupted ({Reason}); every ready box is looked at again once they can be reached")]
    public static partial void RestoreInterrupted(ILogger logger, string kind, string reason);

    [LoggerMessage(7014, LogLevel.Warning, "Box {BoxId} started again, but its .env could not be written into it again: {Error}")]
    public static partial void RestoreFailed(ILogger logger, string boxId, string error);
}
