namespace Covibe.Server.Tests.Infrastructure;

/// <summary>
/// Tests that run alone, after the parallel ones: those that count this process's descriptors exactly, those that load
/// the machine on purpose (a fork bomb, a memory hog), and those that measure wall time a person would feel (a page's
/// long tasks), which on a 2-core machine shared with the rest of the suite measure the suite instead.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SerialGroup
{
    public const string Name = "serial";
}
