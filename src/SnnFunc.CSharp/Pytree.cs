using static SnnFunc.CSharp.Interop;

namespace SnnFunc.CSharp;

/// <summary>
/// Pytrees from C#: nested values whose leaves are tensors — C# records and classes (through their
/// public properties), classes implementing <see cref="ITree"/>, dictionaries, arrays, lists,
/// tuples and F# types. The transforms of <see cref="Autodiff"/>, the optimizers and the
/// checkpoints all work on them.
/// </summary>
/// <remarks>
/// Every leaf has a key path, the keys from the root to it joined by <c>/</c>: property and field
/// names, indices of arrays, lists and tuples, dictionary keys (their string form), e.g.
/// <c>Hidden/TauMem</c>, <c>0/W</c>, <c>Layers/2/Weight</c>; a child of an <see cref="ITree"/> is known
/// by its index. Within a key, <c>% / \ : * ? " &lt; &gt; |</c> and control characters are written
/// <c>%XX</c> (hex), so <c>/</c> only separates keys and every path is a valid .npz member name: the
/// checkpoints name their arrays <c>params/&lt;path&gt;</c> and <c>opt/&lt;path&gt;</c>. The masks and
/// labels of <see cref="Optimizers.Masked"/> and <see cref="Optimizers.MultiTransform"/> see these strings.
/// </remarks>
public static class Pytree
{
    /// <summary>The tensor leaves with their key paths, in the order of <see cref="Leaves{T}"/>.</summary>
    /// <typeparam name="T">The tree's type.</typeparam>
    /// <param name="tree">The tree.</param>
    /// <returns>The leaves with their paths.</returns>
    /// <exception cref="ArgumentException">Two leaves would have the same path (dictionary keys with the same string form).</exception>
    public static IReadOnlyList<PathLeaf> LeavesWithPath<T>(T tree) => WithPath(Tree.leavesWithPath(tree));

    private static PathLeaf[] WithPath(Tuple<KeyPath, Tensor>[] leaves) =>
        leaves.Select(pl => new PathLeaf(pl.Item1.Name, pl.Item2)).ToArray();

    /// <summary>The same structure with <paramref name="f"/> applied to every leaf and its key path.</summary>
    /// <typeparam name="T">The tree's type.</typeparam>
    /// <param name="tree">The tree.</param>
    /// <param name="f">(path, leaf) ↦ new leaf.</param>
    /// <returns>The new tree.</returns>
    public static T MapWithPath<T>(T tree, Func<string, Tensor, Tensor> f)
    {
        ArgumentNullException.ThrowIfNull(f);
        return Tree.mapWithPath(Fn<KeyPath, Tensor, Tensor>((p, x) => f(p.Name, x)), tree);
    }

    /// <summary>The leaves with their key paths and the structure of a tree (from which a tree with
    /// other leaves can be built).</summary>
    /// <typeparam name="T">The tree's type.</typeparam>
    /// <param name="tree">The tree.</param>
    /// <returns>The flattened tree, its <see cref="FlatTree{T}.LeavesWithPath"/> computed.</returns>
    /// <exception cref="ArgumentException">Two leaves would have the same path.</exception>
    public static FlatTree<T> FlattenWithPath<T>(T tree)
    {
        var r = Tree.flattenWithPath(tree);
        var withPath = WithPath(r.Item1);
        return new FlatTree<T>(withPath.Select(pl => pl.Leaf).ToArray(), r.Item2, () => withPath);
    }

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
        return new FlatTree<T>(r.Item1, r.Item2, () => WithPath(Tree.flattenWithPath(tree).Item1));
    }
}

/// <summary>A leaf of a pytree and its key path (see <see cref="Pytree"/>).</summary>
/// <param name="Path">The key path, e.g. <c>0/W</c>.</param>
/// <param name="Leaf">The tensor.</param>
public sealed record PathLeaf(string Path, Tensor Leaf);

/// <summary>A pytree taken apart: its leaves and its structure (<see cref="Pytree.Flatten{T}"/>).</summary>
/// <typeparam name="T">The tree's type.</typeparam>
public sealed class FlatTree<T>
{
    private readonly TreeDef _def;
    private readonly Lazy<PathLeaf[]> _withPath;

    internal FlatTree(Tensor[] leaves, TreeDef def, Func<PathLeaf[]> withPath)
    {
        Leaves = leaves;
        _def = def;
        _withPath = new Lazy<PathLeaf[]>(withPath);
    }

    /// <summary>The tensor leaves in flattening order.</summary>
    public IReadOnlyList<Tensor> Leaves { get; }

    /// <summary>The leaves with their key paths, in flattening order (computed on first use).</summary>
    /// <exception cref="ArgumentException">Two leaves would have the same path.</exception>
    public IReadOnlyList<PathLeaf> LeavesWithPath => _withPath.Value;

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
