namespace Covibe.Server.Features.Boxes;

/// <summary>
/// One kind of box (seed 002's backends): how a box of it is made up to its repository at the commit, given its
/// <c>.env</c>, brought back after a start, and removed. <see cref="ContainerBoxes"/> and <see cref="VmBoxes"/>; a new
/// kind is a new implementation, registered in <c>AddBoxes</c>, never a branch in the provisioner.
/// </summary>
public interface IBoxKind
{
    /// <summary>The name stored with boxes and pools of this kind, and asked for in pools (<c>container</c>, <c>vm</c>).</summary>
    string Name { get; }

    /// <summary>Why no box of this kind can be made now (its container engine is away); null when one can.</summary>
    Task<string?> ProblemAsync(CancellationToken cancellationToken);

    /// <summary>Whether what makes boxes of this kind is there but does not answer now: its boxes wait, rather than fail.</summary>
    Task<bool> UnreachableAsync(CancellationToken cancellationToken);

    /// <summary>Makes the box up to its repository at the commit, recording each step; throws (a <see cref="BoxProvisionException"/> and the like) when one fails.</summary>
    Task MakeAsync(Box box, BoxLog log, CancellationToken cancellationToken);

    /// <summary>What the box's log says when its <c>.env</c> is written.</summary>
    string EnvStep { get; }

    /// <summary>Writes the opened <c>.env</c> into the made box. Never an argument, never logged.</summary>
    Task WriteEnvAsync(Box box, byte[] env, CancellationToken cancellationToken);

    /// <summary>
    /// After this node starts, whether a ready box is still there (made to run again when it stopped); its <c>.env</c> is
    /// then written again when <see cref="EnvInMemory"/>. Kinds whose boxes outlive everything answer true.
    /// </summary>
    Task<bool> BringBackAsync(Box box, CancellationToken cancellationToken);

    /// <summary>The box keeps its <c>.env</c> in memory only (lost when it stops): it is written again after each start.</summary>
    bool EnvInMemory { get; }

    /// <summary>
    /// With <see cref="EnvInMemory"/>: calls <paramref name="started"/> with the id of each box of this kind that starts
    /// again (restarted outside Covibe, or with its machine) until cancelled; throws when the watch breaks (where the boxes
    /// run stopped answering). <see cref="BoxRestorer"/> writes their <c>.env</c> again.
    /// </summary>
    Task WatchStartsAsync(Action<string> started, CancellationToken cancellationToken);

    /// <summary>Removes what the box left on its machine.</summary>
    Task RemoveAsync(Box box, CancellationToken cancellationToken);
}

/// <summary>The kinds of box this server makes, by their stored name.</summary>
public sealed class BoxKinds(IEnumerable<IBoxKind> kinds)
{
    private readonly Dictionary<string, IBoxKind> _byName = kinds.ToDictionary(k => k.Name, StringComparer.Ordinal);

    public IReadOnlyCollection<IBoxKind> All => _byName.Values;

    public IBoxKind Of(Box box) => Named(box.Backend);

    public IBoxKind Named(string name) =>
        _byName.TryGetValue(name, out var kind) ? kind : throw new InvalidOperationException($"No kind of box '{name}' is known.");

    public bool IsKnown(string name) => _byName.ContainsKey(name);
}
