using System.Text.RegularExpressions;

namespace Covibe.Architecture.Tests;

/// <summary>
/// The shape docs/architecture.md draws, checked on the built assemblies (and, for what IL does not keep, the sources).
/// Each rule lists what breaks it with the code that does; <see cref="KnownDebt"/> holds what the landed code broke when
/// the rule was written, so that nothing new gets in while it is paid off (an entry that no longer occurs must go).
/// </summary>
public sealed partial class ArchitectureTests
{
    [Fact]
    public void FeatureRooms_HaveNoCycles()
    {
        var witnesses = new Dictionary<(string From, string To), string>();
        foreach (var (from, to, use) in Rooms.CrossingUses())
        {
            witnesses.TryAdd((from, to), $"{use.Type.Name}.{use.Member} uses {use.UsedName}");
        }
        var edges = witnesses.Keys.GroupBy(e => e.From).ToDictionary(g => g.Key, g => g.Select(e => e.To).ToHashSet());
        var inCycles = Rooms.Cycles(edges)
            .SelectMany(group => witnesses.Where(w => group.Contains(w.Key.From) && group.Contains(w.Key.To)))
            .Select(w => (Key: $"{w.Key.From} -> {w.Key.To}", Witness: w.Value));

        Debt.Check("an arrow between features that lies on a cycle", inCycles, KnownDebt.Cycles);
    }

    [Fact]
    public void Features_UseEachOtherThroughServicesAndSeams_NotTransportOrInternals()
    {
        // A feature's transport (its API, endpoint, connections, codecs) and its log messages are its own.
        var internals = Rooms.CrossingUses()
            .Where(u => InternalName().IsMatch(u.Use.UsedName) || IsLogMessages(u.Use.Used))
            .Select(u => (Key: $"{u.From} -> {u.To}.{u.Use.UsedName}", Witness: $"{u.Use.Type.Name}.{u.Use.Member}"));

        Debt.Check("a feature using another's transport or internals", internals, KnownDebt.Internals);
    }

    [Fact]
    public void Features_TakeWhatTheyNeedInTheirConstructors_NeverFromTheServiceProvider()
    {
        // Registration (AddXxx, MapXxx, and their lambdas) composes; anything else that reaches for the container hides a cycle.
        var lookups = Assemblies.Uses(Assemblies.Load(Rooms.ServerAssembly))
            .Where(u => Rooms.Of(u.Type.Namespace) is not null)
            .Where(u => u.Used.FullName is "System.IServiceProvider" or "Microsoft.Extensions.DependencyInjection.IServiceScopeFactory")
            .Where(u => !Composition().IsMatch(u.Member))
            // What a registration lambda captures (sp, a factory) lives in a closure of the static class that registers.
            .Where(u => !(u.Type.IsAbstract && u.Type.IsSealed && u.Member.StartsWith("<>c__DisplayClass", StringComparison.Ordinal)))
            .Select(u => (Key: $"{Rooms.Of(u.Type.Namespace)}.{u.Type.Name}", Witness: u.Member));

        Debt.Check("a service-provider lookup in a feature", lookups, KnownDebt.ServiceLookups);
    }

    [Fact]
    public void Execution_NamesNothingOfPreviewsOrBoxes()
    {
        var module = Assemblies.Load("Covibe.Execution");
        var names = module.GetTypes().SelectMany(t =>
            new[] { t.Name }
                .Concat(t.Fields.Select(f => f.Name))
                .Concat(t.Properties.Select(p => p.Name))
                .Concat(t.Methods.Select(m => m.Name))
                .Concat(t.Methods.SelectMany(m => m.Parameters.Select(p => $"{m.Name}({p.Name})")))
                .Select(name => (Type: TypeUse.Outermost(t).Name, Name: $"{t.Name}.{name}")));
        var found = names.Where(n => PreviewOrBox().IsMatch(n.Name)).Select(n => (Key: n.Type, Witness: n.Name));

        Debt.Check("Covibe.Execution naming previews or boxes", found, KnownDebt.ExecutionKnowsFeatures);
    }

    [Fact]
    public void EachPlace_IsAFolderOfExecution_AndOnlyTheResolverMakesPlaces()
    {
        // A backend (what runs jobs in one kind of place) lives in a folder of its own: Covibe.Execution.Local, .Containers, .Ssh...
        var execution = Assemblies.Load("Covibe.Execution");
        var backends = execution.GetTypes().Where(t => !t.IsInterface && t.Interfaces.Any(i => i.InterfaceType.Name == "IExecutionBackend")).ToList();
        backends.Count.ShouldBeGreaterThanOrEqualTo(4);
        backends.Where(t => t.Namespace == "Covibe.Execution").Select(t => t.Name).ShouldBeEmpty("a backend goes in the folder of its place");

        // Features are handed a Place; they never make one (which would be deciding where code runs).
        var server = Assemblies.Load(Rooms.ServerAssembly);
        var made = server.GetTypes()
            .SelectMany(t => t.Methods.Where(m => m.HasBody).SelectMany(m => m.Body.Instructions
                .Where(i => i.OpCode == Mono.Cecil.Cil.OpCodes.Newobj && i.Operand is Mono.Cecil.MethodReference ctor && IsPlace(ctor.DeclaringType))
                .Select(_ => (Maker: TypeUse.Outermost(t).Name, Made: ((Mono.Cecil.MethodReference)_.Operand).DeclaringType.Name))))
            .ToList();
        made.ShouldContain(m => m.Maker == "MachineResolver", "the check must see the resolver make places");
        made.Where(m => m.Maker != "MachineResolver" && !IsPlaceName(m.Maker)).ShouldBeEmpty("only MachineResolver decides where code runs");
    }

    private static bool IsPlace(Mono.Cecil.TypeReference type)
    {
        for (var t = type.Resolve(); t is not null; t = t.BaseType?.Resolve())
        {
            if (t.FullName == "Covibe.Server.Features.Machines.Place")
            {
                return true;
            }
        }
        return false;
    }

    // A record's copy (`with`) is made by the record itself.
    private static bool IsPlaceName(string name) => name == "Place" || name.EndsWith("Place", StringComparison.Ordinal);

    [Fact]
    public void Runner_IsItsOwnProject_AndKnowsNothingOfTheServer()
    {
        Assemblies.Exists("Covibe.Runner").ShouldBeTrue("the VM side runs from src/Covibe.Runner");
        var references = Assemblies.Load("Covibe.Runner").AssemblyReferences.Select(r => r.Name).ToList();
        references.ShouldNotContain("Covibe.Server");
        references.ShouldNotContain("Covibe.Cli");
        Assemblies.Load("covibe").GetTypes().ShouldNotContain(t => t.Namespace.StartsWith("Covibe.Cli.Runner", StringComparison.Ordinal));
    }

    [Fact]
    public void TerminalsLibrary_IsUsedByTheTerminalsFeatureOnly()
    {
        // Token signing and WebSocket plumbing are not the terminal library's to lend: they live below both.
        var uses = Rooms.CrossingUsesOf("Covibe.Terminals")
            .Where(u => u.From != "Terminals")
            .Select(u => (Key: $"{u.From} -> Covibe.Terminals.{u.Use.UsedName}", Witness: $"{u.Use.Type.Name}.{u.Use.Member}"));

        Debt.Check("a use of Covibe.Terminals outside Features/Terminals", uses, KnownDebt.TerminalsLibrary);
    }

    [Fact]
    public void PlaceNames_AreComparedByTheResolverOnly()
    {
        var server = Path.Combine(Sources.Root, "src", "Covibe.Server");
        var comparisons = Directory.EnumerateFiles(server, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Where(f => !f.StartsWith(Path.Combine(server, "Features", "Machines"), StringComparison.Ordinal))
            // Seed 001's connection types are read in one place, the VM itself (Vm.IsRunner, Vm.OverSsh), for the resolver and the VMs' own checks.
            .Where(f => f != Path.Combine(server, "Features", "Vms", "Vm.cs"))
            .SelectMany(f => File.ReadLines(f).Select(line => (File: Path.GetRelativePath(server, f), Line: line.Trim())))
            .Where(l => !l.Line.StartsWith("//", StringComparison.Ordinal) && PlaceComparison().IsMatch(l.Line))
            .Select(l => (Key: $"{l.File}: {l.Line}", Witness: l.File));

        Debt.Check("a place name compared as a string outside the resolver", comparisons, KnownDebt.PlaceComparisons);
    }

    [Fact]
    public void WebClient_HasOneDomHelper_AndNoFileOver400Lines()
    {
        var web = Path.Combine(Sources.Root, "src", "Covibe.Server", "web");
        var files = Directory.EnumerateFiles(web, "*.js").Where(f => !f.Contains($"{Path.DirectorySeparatorChar}vendor{Path.DirectorySeparatorChar}", StringComparison.Ordinal)).ToList();
        files.ShouldNotBeEmpty();
        var helpers = files.Where(f => Path.GetFileName(f) != "dom.js" && WebHelpers.DefinesDomHelper(File.ReadAllText(f))).Select(Path.GetFileName).ToList();
        helpers.ShouldBeEmpty("define $ or el in web/dom.js only, and import them");
        var long_ = files.Select(f => (Name: Path.GetFileName(f), Lines: File.ReadAllLines(f).Length)).Where(f => f.Lines > 400).ToList();
        long_.ShouldBeEmpty("split a web file past 400 lines by concern");
    }

    [Fact]
    public void Features_AskAPlace_NeverWhichPlaceItIs()
    {
        // Agents, terminals and the preview run what the place gives them (its backend starts jobs and opens terminals):
        // a feature naming SandboxPlace, SshPlace... would need a new case for every new place.
        var uses = Rooms.CrossingUses()
            .Where(u => u.To == "Machines" && u.Use.UsedName.EndsWith("Place", StringComparison.Ordinal) && u.Use.UsedName != "Place")
            .Select(u => (Key: $"{u.From} -> {u.Use.UsedName}", Witness: $"{u.Use.Type.Name}.{u.Use.Member}"));

        Debt.Check("a feature naming a kind of place", uses, []);
        Rooms.CrossingUses().ShouldContain(u => u.To == "Machines" && u.Use.UsedName == "Place", "features do use places");
    }

    [Fact]
    public void ServerSide_SendsOnWebSockets_OnlyThroughTheOutbox()
    {
        // One send path and one slow-client policy: the hub, terminals, runners and relays queue on an Outbox;
        // nothing else of the server side writes to a socket (a second writer would bypass the queue and its limits).
        var sends = new[] { Rooms.ServerAssembly, "Covibe.Terminals", "Covibe.Web" }
            .SelectMany(name => SocketWrites(Assemblies.Load(name)))
            .Where(w => w.Type.FullName is not ("Covibe.Web.Outbox" or "Covibe.Web.WebSocketSink"))
            .Select(w => (Key: $"{w.Type.FullName}.{w.Member} -> WebSocket.{w.Call}", Witness: w.Member));

        Debt.Check("a WebSocket written outside Outbox", sends, []);
        SocketWrites(Assemblies.Load("Covibe.Web")).ShouldContain(w => w.Type.Name == "WebSocketSink" && w.Call == "SendAsync");
    }

    /// <summary>Calls that write to a WebSocket (a frame or a close frame), by the outermost type whose code makes them.</summary>
    private static IEnumerable<(Mono.Cecil.TypeDefinition Type, string Member, string Call)> SocketWrites(Mono.Cecil.ModuleDefinition module) =>
        from type in module.GetTypes()
        from method in type.Methods
        where method.HasBody
        from instruction in method.Body.Instructions
        where instruction.Operand is Mono.Cecil.MethodReference { DeclaringType.Namespace: "System.Net.WebSockets", Name: "SendAsync" or "CloseOutputAsync" or "CloseAsync" }
        select ((Mono.Cecil.TypeDefinition)TypeUse.Outermost(type), method.Name, ((Mono.Cecil.MethodReference)instruction.Operand).Name);

    [Fact]
    public void Rules_SeeWhatTheyLookFor()
    {
        // The checks above pass vacuously if they see nothing: each must recognise what it is for.
        var server = Assemblies.Load(Rooms.ServerAssembly);
        IsLogMessages(server.GetType("Covibe.Server.Features.Agents.AgentsLog")).ShouldBeTrue();
        IsLogMessages(server.GetType("Covibe.Server.Features.Agents.AgentService")).ShouldBeFalse();
        Rooms.CrossingUses().ShouldContain(u => u.From == "Agents" && u.To == "Auth");
        Rooms.Of("Covibe.Server.Features.Agents.Sub").ShouldBe("Agents");
        Rooms.Of("Covibe.Server.Data").ShouldBeNull();
        Rooms.Cycles(new Dictionary<string, HashSet<string>> { ["a"] = ["b"], ["b"] = ["c"], ["c"] = ["a"], ["d"] = ["a"] })
            .ShouldHaveSingleItem().ShouldBe(["a", "b", "c"], ignoreOrder: true);
        PlaceComparison().IsMatch("if (box.Backend == \"vm\")").ShouldBeTrue();
        PlaceComparison().IsMatch("if (agent.Backend is SshBackend.BackendName or X)").ShouldBeTrue();
        PlaceComparison().IsMatch("if (process is null || backend is null)").ShouldBeFalse();
        PreviewOrBox().IsMatch("HostSandbox").ShouldBeFalse();
        PreviewOrBox().IsMatch("BoxLaunch").ShouldBeTrue();
        Composition().IsMatch("<>c.<AddAgents>b__1_0").ShouldBeTrue();
        Composition().IsMatch("<services>P").ShouldBeFalse();
        WebHelpers.DefinesDomHelper("const $ = (selector) => document.querySelector(selector);").ShouldBeTrue();
        WebHelpers.DefinesDomHelper("  const el = (tag, props = {}) => {").ShouldBeTrue();
        WebHelpers.DefinesDomHelper("import { $, el } from './dom.js';\nconst element = $('#x');").ShouldBeFalse();
    }

    private static bool IsLogMessages(Mono.Cecil.TypeReference type) =>
        TypeUse.Outermost(type).Resolve()?.Methods.Any(m => m.CustomAttributes.Any(a => a.AttributeType.Name == "LoggerMessageAttribute")) == true;

    [GeneratedRegex("(Api|Endpoint|Connection|Codec)$")]
    private static partial Regex InternalName();

    [GeneratedRegex(@"(^|<)(Add|Map)[A-Z]|(^|\.)<>9")]
    private static partial Regex Composition();

    [GeneratedRegex("(?i)preview|(?<!sand)box")]
    private static partial Regex PreviewOrBox();

    // Compared with where something runs: a backend or connection type, seed 003's method, or their constants.
    [GeneratedRegex("""\b(Backend|ConnectionType|Method|RunsOn|backend|connection)\s*(==|!=|is|is not)\s*[(]?\s*"|(==|!=|\bis|\bor|\bcase)\s*[\w.]*\b(BackendName|SandboxedName|SshProxy|Polling|Tunnel)\b""")]
    private static partial Regex PlaceComparison();
}

/// <summary>The repository's sources, found from where the tests run.</summary>
public static class Sources
{
    public static string Root { get; } = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Covibe.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("Covibe.sln not found above " + AppContext.BaseDirectory);
    }
}

public static class Debt
{
    /// <summary>Fails on anything found that is not known debt, and on known debt that is no longer found (delete its entry).</summary>
    public static void Check(string rule, IEnumerable<(string Key, string Witness)> found, IReadOnlyCollection<string> known)
    {
        var byKey = found.GroupBy(f => f.Key).ToDictionary(g => g.Key, g => g.First().Witness);
        var fresh = byKey.Keys.Except(known).Order(StringComparer.Ordinal).Select(k => $"  {k}    ({byKey[k]})").ToList();
        var paid = known.Except(byKey.Keys).Order(StringComparer.Ordinal).Select(k => $"  {k}").ToList();
        var message = (fresh.Count > 0 ? $"New: {rule}:\n{string.Join('\n', fresh)}\n" : "")
            + (paid.Count > 0 ? $"Paid off (delete from KnownDebt):\n{string.Join('\n', paid)}\n" : "");
        message.ShouldBeEmpty();
    }
}

public static partial class WebHelpers
{
    /// <summary>Whether a script defines its own <c>$</c> or <c>el</c> DOM helper.</summary>
    public static bool DefinesDomHelper(string script) => Definition().IsMatch(script);

    [System.Text.RegularExpressions.GeneratedRegex(@"^\s*(export\s+)?(const\s+(\$|el)\s*=|function\s+(\$|el)\s*\()", System.Text.RegularExpressions.RegexOptions.Multiline)]
    private static partial System.Text.RegularExpressions.Regex Definition();
}
