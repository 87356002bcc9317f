using Covibe.Execution;

namespace Covibe.Server.Features.Machines;

/// <summary>The execution backends, registered as keyed services under their names.</summary>
public sealed class ExecutionBackends(IServiceProvider services)
{
    public IExecutionBackend Get(string name) =>
        services.GetKeyedService<IExecutionBackend>(name) ?? throw new InvalidOperationException($"No execution backend '{name}' is configured.");
}
