using static SnnFunc.CSharp.Interop;

namespace SnnFunc.CSharp;

/// <summary>
/// Pytrees from C#: nested values whose leaves are tensors — C# records and classes (through their
/// public properties), classes implementing <see cref="ITree"/>, dictionaries, arrays, lists,
/// tuples and F# types. The transforms of <see cref="Autodiff"/>, the optimizers and the
/// checkpoints all work on them.
/// </summary>
public static class Pytree
{
    /// <summary>The tensor leaves, depth-first in property/element order.</summary>
    /// <typeparam name="T">The tree's type.</typeparam>
    /// <param name="tree">The tree.</param>
    /// <returns>The leaves.</returns>
    public static IReadOnlyList<Tensor> Leaves<T>(T tree) => Tree.leaves(tree);

    /// <summary>The same structure with <paramref name="f"/> applied to every leaf.</summary>
    /// <typeparam name="T">The tree's type.</typeparam>
    /// <param name="tree">The tree.</param>
    /// <param name="f">The function applied to each leaf.</param>
    /// <returns>The new tree.</returns>
    public static T Map<T>(T tree, Func<Tensor, Tensor> f) => Tree.map(Fn(f), tree);

    /// <summary>Combines two trees of the same structure leaf by leaf.</summary>
    /// <typeparam name="T">The trees' type.</typeparam>
    /// <param name="a">The first tree.</param>
    /// <param name="b">The second tree (same structure).</param>
    /// <param name="f">The function applied to each pair of leaves.</param>
    /// <returns>The combined tree.</returns>
    public static T Map<T>(T a, T b, Func<Tensor, Tensor, Tensor> f) => Tree.map2(Fn(f), a, b);

    /// <summary>The leaves and the structure of a tree, from which a tree with other leaves can be built.</summary>
    /// <typeparam name="T">The tree's type.</typeparam>
    /// <param name="tree">The tree.</param>
    /// <returns>The flattened tree.</returns>
    public static FlatTree<T> Flatten<T>(T tree)
    {
        var r = Tree.flatten(tree);
        return new FlatTree<T>(r.Item1, r.Item2);
    }
}

/// <summary>A pytree taken apart: its leaves and its structure (<see cref="Pytree.Flatten{T}"/>).</summary>
/// <typeparam name="T">The tree's type.</typeparam>
public sealed class FlatTree<T>
{
    private readonly TreeDef _def;

    internal FlatTree(Tensor[] leaves, TreeDef def)
    {
        Leaves = leaves;
        _def = def;
    }

    /// <summary>The tensor leaves in flattening order.</summary>
    public IReadOnlyList<Tensor> Leaves { get; }

    /// <summary>A readable description of the structure, e.g. <c>Params(*; *)</c> where * is a tensor.</summary>
    public string Structure => _def.ToString();

    /// <summary>A tree of the same structure with other leaves.</summary>
    /// <param name="leaves">As many tensors as <see cref="Leaves"/>, in the same order.</param>
    /// <returns>The rebuilt tree.</returns>
    public T Unflatten(IReadOnlyList<Tensor> leaves)
    {
        ArgumentNullException.ThrowIfNull(leaves);
        return Tree.unflatten<T>(_def, leaves.ToArray());
    }

    /// <summary>True when another flattened tree has the same structure.</summary>
    /// <param name="other">The other flattened tree.</param>
    /// <returns>Whether the structures are equal.</returns>
    public bool HasSameStructure(FlatTree<T> other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return _def.Equals(other._def);
    }

    /// <inheritdoc/>
    public override string ToString() => $"FlatTree({Leaves.Count} leaves, {Structure})";
}
