using Mono.Cecil;
using Mono.Cecil.Cil;

namespace Covibe.Architecture.Tests;

/// <summary>
/// One use of a type by code of ours, read from the compiled IL (signatures, attributes and method bodies), so that a
/// use the source hides (<c>var</c>, a lambda, an extension method) counts too. <see cref="Type"/> is the outermost
/// type the code belongs to (a lambda's closure or an async state machine counts as the type that wrote it);
/// <see cref="Member"/> the method or field, with a lambda's own name (<c>&lt;AddAgents&gt;b__0_0</c>) left as it is.
/// </summary>
public sealed record TypeUse(TypeDefinition Type, string Member, TypeReference Used)
{
    /// <summary>The used type's namespace (a nested type's is its outermost declaring type's).</summary>
    public string UsedNamespace => Outermost(Used).Namespace;

    /// <summary>The used type's outermost declaring type's name, without generic arity (<c>AgentFeed</c>, <c>IOptions</c>).</summary>
    public string UsedName => Outermost(Used).Name.Split('`')[0];

    internal static TypeReference Outermost(TypeReference type)
    {
        while (type.DeclaringType is not null)
        {
            type = type.DeclaringType;
        }
        return type;
    }
}

/// <summary>Reads the assemblies of src/ as they were built beside the tests.</summary>
public static class Assemblies
{
    private static readonly Dictionary<string, ModuleDefinition> Loaded = [];
    private static readonly Lock Gate = new();

    public static bool Exists(string name) => File.Exists(PathOf(name));

    public static ModuleDefinition Load(string name)
    {
        lock (Gate)
        {
            if (!Loaded.TryGetValue(name, out var module))
            {
                module = ModuleDefinition.ReadModule(PathOf(name), new ReaderParameters { ReadSymbols = false });
                Loaded[name] = module;
            }
            return module;
        }
    }

    /// <summary>Every use of a type by every type of <paramref name="module"/>.</summary>
    public static IEnumerable<TypeUse> Uses(ModuleDefinition module)
    {
        foreach (var type in module.GetTypes())
        {
            var owner = (TypeDefinition)TypeUse.Outermost(type);
            // A lambda's closure or a state machine is named after the method that wrote it (<MapHub>d__3).
            var writer = type.Name.StartsWith('<') ? type.Name + "." : "";
            foreach (var used in UsedBy(type))
            {
                yield return new TypeUse(owner, type.Name, used);
            }
            foreach (var field in type.Fields)
            {
                foreach (var used in Expand(field.FieldType))
                {
                    yield return new TypeUse(owner, writer + field.Name, used);
                }
            }
            foreach (var property in type.Properties)
            {
                foreach (var used in Expand(property.PropertyType))
                {
                    yield return new TypeUse(owner, property.Name, used);
                }
            }
            foreach (var method in type.Methods)
            {
                foreach (var used in UsedBy(method))
                {
                    yield return new TypeUse(owner, writer + method.Name, used);
                }
            }
        }
    }

    private static string PathOf(string name) => Path.Combine(AppContext.BaseDirectory, name + ".dll");

    private static IEnumerable<TypeReference> UsedBy(TypeDefinition type)
    {
        if (type.BaseType is not null)
        {
            foreach (var used in Expand(type.BaseType))
            {
                yield return used;
            }
        }
        foreach (var used in type.Interfaces.SelectMany(i => Expand(i.InterfaceType)).Concat(Attributes(type.CustomAttributes)))
        {
            yield return used;
        }
    }

    private static IEnumerable<TypeReference> UsedBy(MethodDefinition method)
    {
        var signature = Expand(method.ReturnType)
            .Concat(method.Parameters.SelectMany(p => Expand(p.ParameterType)))
            .Concat(Attributes(method.CustomAttributes));
        foreach (var used in signature)
        {
            yield return used;
        }
        if (!method.HasBody)
        {
            yield break;
        }
        foreach (var used in method.Body.Variables.SelectMany(v => Expand(v.VariableType)))
        {
            yield return used;
        }
        foreach (var handler in method.Body.ExceptionHandlers.Where(h => h.CatchType is not null))
        {
            foreach (var used in Expand(handler.CatchType))
            {
                yield return used;
            }
        }
        foreach (var instruction in method.Body.Instructions)
        {
            foreach (var used in Operand(instruction))
            {
                yield return used;
            }
        }
    }

    private static IEnumerable<TypeReference> Operand(Instruction instruction) => instruction.Operand switch
    {
        TypeReference type => Expand(type),
        MethodReference called => Called(called),
        FieldReference field => Expand(field.DeclaringType).Concat(Expand(field.FieldType)),
        _ => [],
    };

    private static IEnumerable<TypeReference> Called(MethodReference method)
    {
        var uses = Expand(method.DeclaringType).Concat(Expand(method.ReturnType)).Concat(method.Parameters.SelectMany(p => Expand(p.ParameterType)));
        return method is GenericInstanceMethod generic ? uses.Concat(generic.GenericArguments.SelectMany(Expand)) : uses;
    }

    private static IEnumerable<TypeReference> Attributes(IEnumerable<CustomAttribute> attributes) =>
        attributes.SelectMany(a => Expand(a.AttributeType).Concat(a.ConstructorArguments.Where(c => c.Value is TypeReference).SelectMany(c => Expand((TypeReference)c.Value))));

    /// <summary>A type and what it is made of: a generic instance's arguments, an array's element.</summary>
    private static IEnumerable<TypeReference> Expand(TypeReference type)
    {
        switch (type)
        {
            case GenericParameter:
                yield break;
            case GenericInstanceType generic:
                foreach (var used in Expand(generic.ElementType).Concat(generic.GenericArguments.SelectMany(Expand)))
                {
                    yield return used;
                }
                yield break;
            case TypeSpecification specification:
                foreach (var used in Expand(specification.ElementType))
                {
                    yield return used;
                }
                yield break;
            default:
                yield return type;
                yield break;
        }
    }
}
