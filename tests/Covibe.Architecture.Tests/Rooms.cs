namespace Covibe.Architecture.Tests;

/// <summary>
/// The server's rooms: each folder of <c>Features/</c>, and <c>Hosting</c> and <c>Http</c> beside them. <c>Data</c> (the
/// one <c>DbContext</c> every feature uses directly, as the style asks) and the root namespace (the composition root,
/// <c>CovibeServer</c>) are no room: they may know every feature.
/// </summary>
public static class Rooms
{
    public const string ServerAssembly = "Covibe.Server";
    private const string Server = "Covibe.Server.";
    private const string Features = "Covibe.Server.Features.";

    /// <summary>The room of a namespace of the server, or null for Data, the root and anything not the server's.</summary>
    public static string? Of(string ns)
    {
        if (ns.StartsWith(Features, StringComparison.Ordinal))
        {
            return ns[Features.Length..].Split('.')[0];
        }
        if (!ns.StartsWith(Server, StringComparison.Ordinal))
        {
            return null;
        }
        var top = ns[Server.Length..].Split('.')[0];
        return top is "Hosting" or "Http" ? top : null;
    }

    /// <summary>Every use, by a type of one room, of a type of another.</summary>
    public static IEnumerable<(string From, string To, TypeUse Use)> CrossingUses() =>
        Assemblies.Uses(Assemblies.Load(ServerAssembly))
            .Select(use => (From: Of(use.Type.Namespace), To: Of(use.UsedNamespace), Use: use))
            .Where(u => u.From is not null && u.To is not null && u.From != u.To)
            .Select(u => (u.From!, u.To!, u.Use));

    /// <summary>Every use, by a type of a room, of a type of the assembly <paramref name="assembly"/>.</summary>
    public static IEnumerable<(string From, TypeUse Use)> CrossingUsesOf(string assembly) =>
        Assemblies.Uses(Assemblies.Load(ServerAssembly))
            .Where(use => use.Used.Scope.Name == assembly || use.Used.Scope.Name == assembly + ".dll")
            .Select(use => (From: Of(use.Type.Namespace), Use: use))
            .Where(u => u.From is not null)
            .Select(u => (u.From!, u.Use));

    /// <summary>
    /// The arrows of an acyclic graph that no longer path implies (its transitive reduction): what a diagram must draw for
    /// every dependency to be readable from it, and no more.
    /// </summary>
    public static HashSet<(string From, string To)> WithoutShortcuts(IReadOnlySet<(string From, string To)> arrows)
    {
        var next = arrows.GroupBy(a => a.From).ToDictionary(g => g.Key, g => g.Select(a => a.To).ToList());
        bool ReachesAvoiding((string From, string To) arrow)
        {
            var seen = new HashSet<string>();
            var stack = new Stack<string>(next[arrow.From].Where(n => n != arrow.To));
            while (stack.TryPop(out var node))
            {
                if (node == arrow.To)
                {
                    return true;
                }
                if (seen.Add(node) && next.TryGetValue(node, out var onward))
                {
                    onward.ForEach(stack.Push);
                }
            }
            return false;
        }
        return arrows.Where(a => !ReachesAvoiding(a)).ToHashSet();
    }

    /// <summary>The strongly connected groups of a directed graph (Tarjan), each with more than one node: its cycles.</summary>
    public static List<HashSet<string>> Cycles(IReadOnlyDictionary<string, HashSet<string>> edges)
    {
        var index = new Dictionary<string, int>();
        var low = new Dictionary<string, int>();
        var stack = new Stack<string>();
        var onStack = new HashSet<string>();
        var groups = new List<HashSet<string>>();
        var next = 0;

        void Visit(string node)
        {
            index[node] = low[node] = next++;
            stack.Push(node);
            onStack.Add(node);
            foreach (var to in edges.GetValueOrDefault(node) ?? [])
            {
                if (!index.ContainsKey(to))
                {
                    Visit(to);
                    low[node] = Math.Min(low[node], low[to]);
                }
                else if (onStack.Contains(to) && index.TryGetValue(to, out var seen))
                {
                    low[node] = Math.Min(low[node], seen);
                }
            }
            if (low[node] != index[node])
            {
                return;
            }
            var group = new HashSet<string>();
            string popped;
            do
            {
                popped = stack.Pop();
                onStack.Remove(popped);
                group.Add(popped);
            }
            while (popped != node);
            if (group.Count > 1)
            {
                groups.Add(group);
            }
        }

        foreach (var node in edges.Keys.Concat(edges.Values.SelectMany(v => v)).Distinct().Order(StringComparer.Ordinal))
        {
            if (!index.ContainsKey(node))
            {
                Visit(node);
            }
        }
        return groups;
    }
}

