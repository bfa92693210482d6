using System.Collections;
using System.Collections.ObjectModel;
using System.Diagnostics.CodeAnalysis;
using Microsoft.FSharp.Collections;
using NodeMap = Microsoft.FSharp.Collections.FSharpMap<string, Microsoft.FSharp.Collections.FSharpMap<string, SnnFunc.Tensor>>;
using TensorMap = Microsoft.FSharp.Collections.FSharpMap<string, SnnFunc.Tensor>;

namespace SnnFunc.CSharp;

// The values a NetworkGraph takes and gives: parameters and states (by node, then by name), run
// results. Parameters and states wrap the core's Map<string, Map<string, Tensor>> as its lone pytree
// child without a key of their own, so that their key paths, their leaves and every number are the
// F# core's ("hidden/tauMem", "x-%3Ehidden/weight").

/// <summary>The tensors of one node by name: a read-only view of the core's map, itself a pytree.</summary>
internal sealed class NodeTensors(string owner, string node, TensorMap inner) : IReadOnlyDictionary<string, Tensor>, IKeyedTree
{
    internal TensorMap Inner { get; } = inner;

    public Tensor this[string key] =>
        Inner.TryGetValue(key, out var t)
            ? t
            : throw new KeyNotFoundException($"{owner}: '{node}' has no '{key}' (it has {string.Join(", ", Inner.Keys)})");

    public IEnumerable<string> Keys => Inner.Keys;

    public IEnumerable<Tensor> Values => Inner.Values;

    public int Count => Inner.Count;

    public bool ContainsKey(string key) => Inner.ContainsKey(key);

    public bool TryGetValue(string key, [MaybeNullWhen(false)] out Tensor value) => Inner.TryGetValue(key, out value);

    public IEnumerator<KeyValuePair<string, Tensor>> GetEnumerator() => ((IEnumerable<KeyValuePair<string, Tensor>>)Inner).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    object[] ITree.Children => [Inner];

    KeyPath[] IKeyedTree.ChildKeys => [KeyPath.Root];

    object ITree.Rebuild(object[] children) => new NodeTensors(owner, node, (TensorMap)children[0]);

    public override string ToString() => Format(Inner);

    internal static string Format(TensorMap m) =>
        "{ " + string.Join(", ", m.Select(kv => $"{kv.Key}: [{string.Join(", ", kv.Value.Shape)}]")) + " }";
}

/// <summary>What GraphParameters and GraphState share: lookups with messages naming the owner.</summary>
internal static class NodeMaps
{
    public static IReadOnlyDictionary<string, Tensor> Node(string owner, NodeMap m, string node) =>
        m.TryGetValue(node, out var t)
            ? new NodeTensors(owner, node, t)
            : throw new KeyNotFoundException($"{owner}: no node '{node}' (nodes: {string.Join(", ", m.Keys)})");

    public static bool TryNode(string owner, NodeMap m, string node, [MaybeNullWhen(false)] out IReadOnlyDictionary<string, Tensor> value)
    {
        if (m.TryGetValue(node, out var t))
        {
            value = new NodeTensors(owner, node, t);
            return true;
        }
        value = null;
        return false;
    }

    public static IEnumerator<KeyValuePair<string, IReadOnlyDictionary<string, Tensor>>> Enumerate(string owner, NodeMap m) =>
        m.Select(kv => new KeyValuePair<string, IReadOnlyDictionary<string, Tensor>>(kv.Key, new NodeTensors(owner, kv.Key, kv.Value))).GetEnumerator();

    public static TensorMap ToMap(IReadOnlyDictionary<string, Tensor> tensors, string parameter)
    {
        ArgumentNullException.ThrowIfNull(tensors, parameter);
        if (tensors is NodeTensors view) return view.Inner;
        return MapModule.OfSeq(tensors.Select(kv => Tuple.Create(kv.Key, kv.Value ?? throw new ArgumentException($"the tensor '{kv.Key}' is null", parameter))));
    }

    public static NodeMap ToMap(IReadOnlyDictionary<string, IReadOnlyDictionary<string, Tensor>> nodes, string parameter)
    {
        ArgumentNullException.ThrowIfNull(nodes, parameter);
        return MapModule.OfSeq(nodes.Select(kv => Tuple.Create(kv.Key, ToMap(kv.Value, parameter))));
    }

    public static string Format(string owner, NodeMap m) =>
        owner + " { " + string.Join("; ", m.Select(kv => $"{kv.Key}: {NodeTensors.Format(kv.Value)}")) + " }";
}

/// <summary>
/// The parameters of a <see cref="NetworkGraph"/>: by node name, then by parameter name —
/// <c>p["hidden"]["tauMem"]</c> (a population's neuron parameters, rank 0 or per neuron),
/// <c>p["x->hidden"]["weight"]</c> ([in, out]), <c>"bias"</c>, <c>"delay"</c>. Immutable, and a
/// pytree: differentiate it with <see cref="Autodiff.ValueAndGrad{TParams}(Func{TParams, Tensor}, TParams)"/>
/// (the gradient is a <see cref="GraphParameters"/> too), update it with an <see cref="Optimizer"/>,
/// save it with <see cref="Trainer.SaveCheckpoint{TParams}"/>. Its key paths are the F# core's,
/// node then parameter: <c>hidden/tauMem</c>, <c>x-%3Ehidden/weight</c> (the <c>&gt;</c> of a default
/// projection name escaped, see <see cref="Pytree"/>).
/// </summary>
public sealed class GraphParameters : IReadOnlyDictionary<string, IReadOnlyDictionary<string, Tensor>>, IKeyedTree
{
    private const string Owner = nameof(GraphParameters);

    internal GraphParameters(NodeMap inner) => Inner = inner ?? throw new ArgumentNullException(nameof(inner));

    internal NodeMap Inner { get; }

    /// <summary>Parameters from tensors by node and name (e.g. read from a file, or built by hand).</summary>
    /// <param name="nodes">The tensors by node name, then by parameter name.</param>
    /// <returns>The parameters.</returns>
    public static GraphParameters FromDictionary(IReadOnlyDictionary<string, IReadOnlyDictionary<string, Tensor>> nodes) =>
        new(NodeMaps.ToMap(nodes, nameof(nodes)));

    /// <summary>These parameters with the entry of <paramref name="node"/> replaced (or added).</summary>
    /// <param name="node">The node's name.</param>
    /// <param name="tensors">Its tensors by parameter name.</param>
    /// <returns>The new parameters (these are unchanged).</returns>
    public GraphParameters With(string node, IReadOnlyDictionary<string, Tensor> tensors)
    {
        ArgumentNullException.ThrowIfNull(node);
        return new(Inner.Add(node, NodeMaps.ToMap(tensors, nameof(tensors))));
    }

    /// <summary>These parameters with one tensor replaced (or added), e.g. <c>p.With("hidden", "tauMem", taus)</c>.</summary>
    /// <param name="node">The node's name.</param>
    /// <param name="name">The parameter's name.</param>
    /// <param name="value">The tensor.</param>
    /// <returns>The new parameters (these are unchanged).</returns>
    public GraphParameters With(string node, string name, Tensor value)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(value);
        var entry = Inner.TryGetValue(node, out var m) ? m : MapModule.Empty<string, Tensor>();
        return new(Inner.Add(node, entry.Add(name, value)));
    }

    /// <summary>The tensors of a node by parameter name.</summary>
    /// <param name="node">The node's name.</param>
    /// <returns>Its tensors (a read-only view; a pytree).</returns>
    /// <exception cref="KeyNotFoundException">No parameters for that node (sources have none); the message lists the nodes.</exception>
    public IReadOnlyDictionary<string, Tensor> this[string node] => NodeMaps.Node(Owner, Inner, node);

    /// <summary>The names of the nodes with parameters, in ordinal order.</summary>
    public IEnumerable<string> Keys => Inner.Keys;

    /// <summary>The nodes' tensors, in the order of <see cref="Keys"/>.</summary>
    public IEnumerable<IReadOnlyDictionary<string, Tensor>> Values => Keys.Select(k => this[k]);

    /// <summary>The number of nodes with parameters.</summary>
    public int Count => Inner.Count;

    /// <summary>All tensors, in pytree order (node, then parameter name).</summary>
    public IReadOnlyList<Tensor> Leaves => Tree.leaves(Inner);

    /// <summary>Whether a node has parameters.</summary>
    /// <param name="key">The node's name.</param>
    /// <returns>True when it has.</returns>
    public bool ContainsKey(string key) => Inner.ContainsKey(key);

    /// <summary>The tensors of a node, if it has parameters.</summary>
    /// <param name="key">The node's name.</param>
    /// <param name="value">Its tensors, or null.</param>
    /// <returns>True when it has parameters.</returns>
    public bool TryGetValue(string key, [MaybeNullWhen(false)] out IReadOnlyDictionary<string, Tensor> value) =>
        NodeMaps.TryNode(Owner, Inner, key, out value);

    /// <summary>The nodes and their tensors.</summary>
    /// <returns>The enumerator.</returns>
    public IEnumerator<KeyValuePair<string, IReadOnlyDictionary<string, Tensor>>> GetEnumerator() => NodeMaps.Enumerate(Owner, Inner);

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    object[] ITree.Children => [Inner];

    // The wrapper adds no key: paths are the core's, node then parameter ("hidden/tauMem").
    KeyPath[] IKeyedTree.ChildKeys => [KeyPath.Root];

    object ITree.Rebuild(object[] children) => new GraphParameters((NodeMap)children[0]);

    /// <inheritdoc/>
    public override string ToString() => NodeMaps.Format(Owner, Inner);
}

/// <summary>
/// The state of a <see cref="NetworkGraph"/> between runs (<see cref="GraphRunResult.Final"/>, passed
/// as <c>initial</c> to continue a run): by node name, then by variable — <c>v</c>, <c>i</c>,
/// <c>refractory</c> ... of a population, <c>prev</c> (a population's output fed back within a
/// cycle), <c>history</c> (delayed inputs). Immutable, and a pytree with the core's key paths
/// (<c>hidden/v</c>). It wraps the core's <c>GraphState</c>, an F# type abbreviation of a map that C#
/// does not see, hence the shared name.
/// </summary>
public sealed class GraphState : IReadOnlyDictionary<string, IReadOnlyDictionary<string, Tensor>>, IKeyedTree
{
    private const string Owner = nameof(GraphState);

    internal GraphState(NodeMap inner) => Inner = inner ?? throw new ArgumentNullException(nameof(inner));

    internal NodeMap Inner { get; }

    /// <summary>A state from tensors by node and variable (a node or variable left out starts at zero).</summary>
    /// <param name="nodes">The tensors by node name, then by variable name; each [batch..., node shape].</param>
    /// <returns>The state.</returns>
    public static GraphState FromDictionary(IReadOnlyDictionary<string, IReadOnlyDictionary<string, Tensor>> nodes) =>
        new(NodeMaps.ToMap(nodes, nameof(nodes)));

    /// <summary>The variables of a node by name.</summary>
    /// <param name="node">The node's name.</param>
    /// <returns>Its variables (a read-only view; a pytree).</returns>
    /// <exception cref="KeyNotFoundException">No state for that node; the message lists the nodes.</exception>
    public IReadOnlyDictionary<string, Tensor> this[string node] => NodeMaps.Node(Owner, Inner, node);

    /// <summary>The names of the nodes with state, in ordinal order.</summary>
    public IEnumerable<string> Keys => Inner.Keys;

    /// <summary>The nodes' variables, in the order of <see cref="Keys"/>.</summary>
    public IEnumerable<IReadOnlyDictionary<string, Tensor>> Values => Keys.Select(k => this[k]);

    /// <summary>The number of nodes with state.</summary>
    public int Count => Inner.Count;

    /// <summary>Whether a node has state.</summary>
    /// <param name="key">The node's name.</param>
    /// <returns>True when it has.</returns>
    public bool ContainsKey(string key) => Inner.ContainsKey(key);

    /// <summary>The variables of a node, if it has state.</summary>
    /// <param name="key">The node's name.</param>
    /// <param name="value">Its variables, or null.</param>
    /// <returns>True when it has state.</returns>
    public bool TryGetValue(string key, [MaybeNullWhen(false)] out IReadOnlyDictionary<string, Tensor> value) =>
        NodeMaps.TryNode(Owner, Inner, key, out value);

    /// <summary>The nodes and their variables.</summary>
    /// <returns>The enumerator.</returns>
    public IEnumerator<KeyValuePair<string, IReadOnlyDictionary<string, Tensor>>> GetEnumerator() => NodeMaps.Enumerate(Owner, Inner);

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    object[] ITree.Children => [Inner];

    KeyPath[] IKeyedTree.ChildKeys => [KeyPath.Root];

    object ITree.Rebuild(object[] children) => new GraphState((NodeMap)children[0]);

    /// <inheritdoc/>
    public override string ToString() => NodeMaps.Format(Owner, Inner);
}

/// <summary>What a run records of a node, each [T, batch..., node shape]; null where the node has no
/// such signal (an LI population has no spikes, a projection no membrane).</summary>
/// <param name="Output">The node's output: the spikes of a spiking population, the membrane of an LI
/// population, the currents of a projection.</param>
/// <param name="Spikes">The spikes (0/1) of a spiking population.</param>
/// <param name="Membrane">The membrane potential (before the reset) of a population.</param>
/// <param name="Current">The synaptic current of a population, the output current of a projection.</param>
public sealed record NodeObservables(Tensor? Output, Tensor? Spikes, Tensor? Membrane, Tensor? Current);

/// <summary>
/// The result of <see cref="NetworkGraph.Run"/>: the observables of the recorded nodes
/// (<c>r["out"].Membrane</c>) and the final state of the graph (<see cref="Final"/>), from which a
/// later run continues. A pytree (its key paths are the core's: <c>Observed/out/Membrane</c>,
/// <c>Final/out/v</c>), so it can be the auxiliary data of
/// <see cref="Autodiff.ValueAndGradWithAux{TParams, TAux}"/>.
/// </summary>
public sealed class GraphRunResult : IKeyedTree
{
    internal GraphRunResult(RunResult inner)
    {
        Inner = inner;
        Observed = new ReadOnlyDictionary<string, NodeObservables>(
            inner.Observed.ToDictionary(kv => kv.Key, kv => Of(kv.Value)));
        Final = new GraphState(inner.Final);
    }

    internal RunResult Inner { get; }

    private static NodeObservables Of(Observed o) => new(o.Output, o.Spikes, o.Membrane, o.Current);

    /// <summary>The observables of a recorded node.</summary>
    /// <param name="node">The node's name.</param>
    /// <returns>Its observables.</returns>
    /// <exception cref="ArgumentException">The node was not recorded; the message lists those that were.</exception>
    public NodeObservables this[string node] => Of(Inner.Item(node));

    /// <summary>The observables of every recorded node, by name.</summary>
    public IReadOnlyDictionary<string, NodeObservables> Observed { get; }

    /// <summary>The state after the last step; pass it as <c>initial</c> to <see cref="NetworkGraph.Run"/>
    /// to continue exactly where this run stopped.</summary>
    public GraphState Final { get; }

    object[] ITree.Children => [Inner];

    KeyPath[] IKeyedTree.ChildKeys => [KeyPath.Root];

    object ITree.Rebuild(object[] children) => new GraphRunResult((RunResult)children[0]);

    /// <inheritdoc/>
    public override string ToString() => $"GraphRunResult(recorded: {string.Join(", ", Observed.Keys)})";
}
