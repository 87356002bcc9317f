using Covibe.Execution;

namespace Covibe.Server.Features.Machines;

/// <summary>The execution backends by name (taken in the constructor: one <see cref="NamedBackend"/> registered per backend).</summary>
public sealed class ExecutionBackends(IEnumerable<NamedBackend> backends)
{
    private readonly Dictionary<string, Lazy<IExecutionBackend>> _byName = backends.ToDictionary(b => b.Name, b => b.Backend, StringComparer.Ordinal);

    public IExecutionBackend Get(string name) =>
        _byName.TryGetValue(name, out var backend) ? backend.Value : throw new InvalidOperationException($"No execution backend '{name}' is configured.");
}
