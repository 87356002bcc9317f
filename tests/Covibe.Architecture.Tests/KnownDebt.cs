namespace Covibe.Architecture.Tests;

/// <summary>
/// What the landed code broke when the rules were written (issue 23, 2026-12-05). Pay it off and delete the entry (the test
/// says when); never add to it.
/// </summary>
public static class KnownDebt
{
    public static readonly string[] Cycles =
    [
    ];

    public static readonly string[] Internals =
    [
    ];

    public static readonly string[] ServiceLookups =
    [
    ];

    public static readonly string[] ExecutionKnowsFeatures =
    [
    ];

    public static readonly string[] TerminalsLibrary =
    [
    ];

    public static readonly string[] PlaceComparisons =
    [
    ];
}
