using System.Reflection;
using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;

namespace SnnFunc.CSharp.Tests;

/// Types used only by the checker's self-test.
public sealed class LeakyApi
{
    public FSharpList<int> List { get; } = FSharpList<int>.Empty;
    public Dictionary<string, FSharpOption<int>[]> Nested { get; } = new();
    public (int, int) Tuple() => (1, 2);
    public void TakesFunc(FSharpFunc<int, int> f) { }
    public Layer CoreRecord() => throw new NotSupportedException();
    public IReadOnlyList<T> Generic<T>() where T : IEquatable<FSharpMap<int, int>> => [];
}

/// The facade's public signatures use only C# / .NET types: no F# list, option, tuple, function,
/// map (anything from FSharp.Core), no System.Tuple / ValueTuple, and from the F# core assembly only
/// Tensor, DType, EventBuffer (a plain class of four tensors, used as it is), ITree and IKeyedTree
/// (which the facade's pytree wrappers NetworkParameters and OptimizerState implement so as to add no
/// key to key paths; it appears in no signature).
public class PublicSurfaceTests
{
    private static readonly Assembly FSharpCore = typeof(FSharpList<>).Assembly;
    private static readonly Assembly Core = typeof(Tensor).Assembly;
    private static readonly HashSet<Type> AllowedFromCore = [typeof(Tensor), typeof(DType), typeof(EventBuffer), typeof(ITree), typeof(IKeyedTree)];

    private static string? Forbidden(Type t)
    {
        if (t.Assembly == FSharpCore) return "an FSharp.Core type";
        if (t.IsGenericType && (t.GetGenericTypeDefinition().FullName ?? "").StartsWith("System.Tuple`")) return "a System.Tuple";
        if (t.IsGenericType && (t.GetGenericTypeDefinition().FullName ?? "").StartsWith("System.ValueTuple`")) return "a ValueTuple";
        if (t.Assembly == Core && !t.IsGenericParameter && !AllowedFromCore.Contains(t)) return "an F# core type other than Tensor, DType, EventBuffer, ITree, IKeyedTree";
        return null;
    }

    private static void Visit(Type t, string where, List<string> problems, HashSet<(Type, string)> seen)
    {
        if (!seen.Add((t, where))) return;
        if (t.HasElementType) { Visit(t.GetElementType()!, where, problems, seen); return; }
        if (t.IsGenericParameter)
        {
            foreach (var c in t.GetGenericParameterConstraints()) Visit(c, where + $" (constraint of {t.Name})", problems, seen);
            return;
        }
        var why = Forbidden(t);
        if (why is not null) problems.Add($"{where}: {t} is {why}");
        if (t.IsGenericType && !t.IsGenericTypeDefinition)
            foreach (var a in t.GetGenericArguments()) Visit(a, where, problems, seen);
    }

    private static bool Visible(MethodBase m) => m.IsPublic || m.IsFamily || m.IsFamilyOrAssembly;

    public static List<string> Check(IEnumerable<Type> types)
    {
        var problems = new List<string>();
        var seen = new HashSet<(Type, string)>();
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        foreach (var type in types)
        {
            var name = type.FullName ?? type.Name;
            if (type.BaseType is { } b) Visit(b, $"{name} base type", problems, seen);
            foreach (var i in type.GetInterfaces()) Visit(i, $"{name} interface", problems, seen);
            foreach (var g in type.GetGenericArguments()) Visit(g, $"{name} type parameter", problems, seen);
            foreach (var c in type.GetConstructors(all).Where(Visible))
                foreach (var p in c.GetParameters()) Visit(p.ParameterType, $"{name} constructor parameter {p.Name}", problems, seen);
            foreach (var m in type.GetMethods(all).Where(Visible))
            {
                Visit(m.ReturnType, $"{name}.{m.Name} return", problems, seen);
                foreach (var p in m.GetParameters()) Visit(p.ParameterType, $"{name}.{m.Name} parameter {p.Name}", problems, seen);
                foreach (var g in m.GetGenericArguments()) Visit(g, $"{name}.{m.Name} type parameter", problems, seen);
            }
            foreach (var p in type.GetProperties(all))
            {
                if (!(p.GetMethod is { } get && Visible(get)) && !(p.SetMethod is { } set && Visible(set))) continue;
                Visit(p.PropertyType, $"{name}.{p.Name}", problems, seen);
                foreach (var ip in p.GetIndexParameters()) Visit(ip.ParameterType, $"{name}.{p.Name} index", problems, seen);
            }
            foreach (var f in type.GetFields(all).Where(f => f.IsPublic || f.IsFamily || f.IsFamilyOrAssembly))
                Visit(f.FieldType, $"{name}.{f.Name}", problems, seen);
            foreach (var e in type.GetEvents(all))
                if (e.AddMethod is { } add && Visible(add)) Visit(e.EventHandlerType!, $"{name}.{e.Name}", problems, seen);
        }
        return problems;
    }

    [Fact]
    public void NoFSharpTypesInThePublicSurface()
    {
        var types = typeof(Autodiff).Assembly.GetExportedTypes();
        Assert.True(types.Length > 40, $"only {types.Length} exported types found");
        var problems = Check(types);
        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
    }

    [Fact]
    public void TheCheckerFindsEveryKindOfLeak()
    {
        var problems = Check([typeof(LeakyApi)]);
        foreach (var expected in new[] { "List", "Nested", "Tuple return", "TakesFunc parameter", "CoreRecord return", "Generic type parameter (constraint" })
            Assert.Contains(problems, p => p.Contains(expected));
    }

    [Fact]
    public void EveryPublicMemberIsDocumented()
    {
        // The build enforces it (GenerateDocumentationFile + warnings as errors: CS1591); this checks
        // that the documentation file ships next to the assembly and covers the main types.
        var xml = Path.ChangeExtension(typeof(Autodiff).Assembly.Location, ".xml");
        Assert.True(File.Exists(xml), xml);
        var text = File.ReadAllText(xml);
        foreach (var member in new[] { "T:SnnFunc.CSharp.Autodiff", "M:SnnFunc.CSharp.Autodiff.Grad(System.Func{SnnFunc.Tensor,SnnFunc.Tensor})", "T:SnnFunc.CSharp.Network", "T:SnnFunc.CSharp.Trainer", "T:SnnFunc.CSharp.NetworkGraph", "T:SnnFunc.CSharp.GraphParameters", "T:SnnFunc.CSharp.GraphTransforms", "T:SnnFunc.CSharp.NirFiles", "T:SnnFunc.CSharp.NirConventions", "T:SnnFunc.CSharp.NirNetwork" })
            Assert.Contains($"name=\"{member}", text);
    }
}
