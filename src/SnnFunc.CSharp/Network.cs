using Microsoft.FSharp.Collections;
using static SnnFunc.CSharp.Interop;

namespace SnnFunc.CSharp;

/// <summary>What a node of <see cref="NetworkParameters"/> holds.</summary>
public enum ParametersKind
{
    /// <summary>Nothing (a layer without parameters).</summary>
    None,

    /// <summary>Named tensors of one layer (e.g. "W", "b").</summary>
    Weights,

    /// <summary>The parameters of a combinator's children, in order.</summary>
    Children,
}

/// <summary>
/// The parameters of a <see cref="Network"/>: an immutable tree of named tensors, itself a pytree
/// (differentiate it with <see cref="Autodiff.ValueAndGrad{TParams}(Func{TParams, Tensor}, TParams)"/>, update
/// it with an <see cref="Optimizer"/>, save it with <see cref="Trainer.SaveCheckpoint{TParams}"/>).
/// Its key paths (<see cref="Pytree.LeavesWithPath{T}"/>) are a child's index, then a tensor's name:
/// <c>0/W</c> for the first layer of a sequential network, <c>1/0/W</c> one level deeper.
/// </summary>
public sealed class NetworkParameters : IKeyedTree
{
    internal NetworkParameters(Params inner) => Inner = inner ?? throw new ArgumentNullException(nameof(inner));

    internal Params Inner { get; }

    /// <summary>The parameters of a layer without parameters.</summary>
    public static NetworkParameters Empty { get; } = new(Params.NoParams);

    /// <summary>A node of named tensors (for custom layers).</summary>
    /// <param name="weights">The tensors by name.</param>
    /// <returns>The parameters.</returns>
    public static NetworkParameters FromWeights(IReadOnlyDictionary<string, Tensor> weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        return new(Params.NewWeights(MapModule.OfSeq(weights.Select(kv => Tuple.Create(kv.Key, kv.Value)))));
    }

    /// <summary>A node holding the parameters of several children, in order.</summary>
    /// <param name="children">The children's parameters.</param>
    /// <returns>The parameters.</returns>
    public static NetworkParameters FromChildren(IEnumerable<NetworkParameters> children)
    {
        ArgumentNullException.ThrowIfNull(children);
        return new(Params.NewChildren(List(children.Select(c => c.Inner))));
    }

    /// <summary>What this node holds.</summary>
    public ParametersKind Kind => Inner switch
    {
        Params.Weights => ParametersKind.Weights,
        Params.Children => ParametersKind.Children,
        _ => ParametersKind.None,
    };

    /// <summary>The named tensors of a <see cref="ParametersKind.Weights"/> node (empty otherwise).</summary>
    public IReadOnlyDictionary<string, Tensor> Weights =>
        Inner is Params.Weights w ? w.Item.ToDictionary(kv => kv.Key, kv => kv.Value) : new Dictionary<string, Tensor>();

    /// <summary>The children of a <see cref="ParametersKind.Children"/> node (empty otherwise).</summary>
    public IReadOnlyList<NetworkParameters> Children =>
        Inner is Params.Children c ? c.Item.Select(p => new NetworkParameters(p)).ToArray() : [];

    /// <summary>A named tensor of a weights node.</summary>
    /// <param name="name">The tensor's name, e.g. "W".</param>
    /// <returns>The tensor.</returns>
    /// <exception cref="ArgumentException">There is no tensor of that name.</exception>
    public Tensor this[string name] =>
        Inner is Params.Weights w && w.Item.TryGetValue(name, out var t)
            ? t
            : throw new ArgumentException($"NetworkParameters: no tensor named '{name}' in {this}", nameof(name));

    /// <summary>The parameters of the i-th child (of a sequential network: of its i-th layer).</summary>
    /// <param name="index">The child's index.</param>
    /// <returns>The child's parameters.</returns>
    public NetworkParameters this[int index] => Children[index];

    /// <summary>All tensors, depth-first.</summary>
    public IReadOnlyList<Tensor> Leaves => Tree.leaves(Inner);

    /// <summary>The total number of scalar parameters.</summary>
    public long Count => Leaves.Sum(t => (long)t.Count);

    object[] ITree.Children => [Inner];

    // The wrapper adds no key: paths are the core's, a child's index then a tensor's name ("0/W").
    KeyPath[] IKeyedTree.ChildKeys => [KeyPath.Root];

    object ITree.Rebuild(object[] children) => new NetworkParameters((Params)children[0]);

    /// <inheritdoc/>
    public override string ToString() => Kind switch
    {
        ParametersKind.Weights => "Weights { " + string.Join(", ", Weights.Select(kv => $"{kv.Key}: [{string.Join(", ", kv.Value.Shape)}]")) + " }",
        ParametersKind.Children => "Children [" + string.Join("; ", Children) + "]",
        _ => "None",
    };
}

/// <summary>The result of <see cref="Network.Init(RandomKey, int[])"/>: initial parameters and output shapes.</summary>
/// <param name="Parameters">The initial parameters.</param>
/// <param name="OutputShapes">The per-sample feature shape of each output.</param>
public sealed record NetworkInit(NetworkParameters Parameters, IReadOnlyList<IReadOnlyList<int>> OutputShapes)
{
    /// <summary>The feature shape of the first (usually only) output.</summary>
    public IReadOnlyList<int> OutputShape => OutputShapes[0];
}

/// <summary>
/// A layer or a whole network, stax-style: <see cref="Init(RandomKey, int[])"/> makes parameters from a key and
/// the per-sample input feature shape, <see cref="Apply"/> maps parameters and inputs to outputs.
/// Networks hold no state; the parameters are a separate immutable pytree. Build them from the
/// static factories and combine them with <see cref="Sequential"/> or fluently with <see cref="Then"/>:
/// <code>
/// var net = Network.Dense(120, scale: 6).Then(Network.Lif(lif)).Then(Network.Dense(3, scale: 2)).Then(Network.Li(li));
/// </code>
/// Inputs are time-major [T, B, features] for spiking layers (or [B, features] for dense layers alone).
/// </summary>
public sealed class Network
{
    private readonly Network[]? _sequence;

    internal Network(Layer layer, Network[]? sequence = null)
    {
        Layer = layer;
        _sequence = sequence;
    }

    internal Layer Layer { get; }

    /// <summary>A readable description, e.g. <c>serial[dense(120); lif; dense(3); li]</c>.</summary>
    public string Name => Layer.Name;

    /// <summary>The layers of a sequential network in order (a single layer lists itself).</summary>
    public IReadOnlyList<Network> Layers => _sequence ?? [this];

    // Running ------------------------------------------------------------------------------------

    /// <summary>Initial parameters and the output feature shape for one input.</summary>
    /// <param name="key">The random key of the initialisation.</param>
    /// <param name="inputShape">The per-sample input feature shape (no time or batch axes), e.g. 5.</param>
    /// <returns>The parameters and the output shape.</returns>
    public NetworkInit Init(RandomKey key, params int[] inputShape)
    {
        ArgumentNullException.ThrowIfNull(key);
        return InitMany(key, [inputShape]);
    }

    /// <summary>Initial parameters and output shapes for a layer with several inputs.</summary>
    /// <param name="key">The random key of the initialisation.</param>
    /// <param name="inputShapes">The per-sample feature shape of each input.</param>
    /// <returns>The parameters and the output shapes.</returns>
    public NetworkInit InitMany(RandomKey key, IReadOnlyList<int[]> inputShapes)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(inputShapes);
        var r = Microsoft.FSharp.Core.FSharpFunc<RandomBits.Key, FSharpList<int[]>>.InvokeFast(Layer.Init, key.Key, List(inputShapes));
        return new NetworkInit(new NetworkParameters(r.Item1), r.Item2.Select(s => (IReadOnlyList<int>)s).ToArray());
    }

    /// <summary>Runs the network for evaluation (dropout off) on one input.</summary>
    /// <param name="parameters">The parameters.</param>
    /// <param name="input">The input, e.g. time-major spikes [T, B, N].</param>
    /// <returns>The output.</returns>
    public Tensor Apply(NetworkParameters parameters, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return LayerModule.apply(Layer, parameters.Inner, input);
    }

    /// <summary>Runs the network for training (dropout and other noise driven by the key) on one input.</summary>
    /// <param name="parameters">The parameters.</param>
    /// <param name="key">The key of this call's randomness.</param>
    /// <param name="input">The input.</param>
    /// <returns>The output.</returns>
    public Tensor ApplyTrain(NetworkParameters parameters, RandomKey key, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(key);
        return LayerModule.applyTrain(Layer, parameters.Inner, key.Key, input);
    }

    /// <summary>Runs a network with several inputs or outputs.</summary>
    /// <param name="parameters">The parameters.</param>
    /// <param name="inputs">The inputs.</param>
    /// <param name="trainingKey">For training, the key of this call's randomness; null for evaluation.</param>
    /// <returns>The outputs.</returns>
    public IReadOnlyList<Tensor> ApplyMany(NetworkParameters parameters, IReadOnlyList<Tensor> inputs, RandomKey? trainingKey = null)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(inputs);
        var mode = trainingKey is null ? Mode.Eval : Mode.NewTrain(trainingKey.Key);
        var outs = Microsoft.FSharp.Core.FSharpFunc<Params, Mode>.InvokeFast(Layer.Apply, parameters.Inner, mode, List(inputs));
        return outs.ToArray();
    }

    // Composition --------------------------------------------------------------------------------

    /// <summary>This network followed by <paramref name="next"/> (a flat sequential network).</summary>
    /// <param name="next">The following layer or network.</param>
    /// <returns>The combined network.</returns>
    public Network Then(Network next)
    {
        ArgumentNullException.ThrowIfNull(next);
        return Sequential([.. Layers, next]);
    }

    /// <summary>Layers one after the other; the parameters have one child per layer.</summary>
    /// <param name="layers">The layers in order.</param>
    /// <returns>The network.</returns>
    public static Network Sequential(params Network[] layers)
    {
        ArgumentNullException.ThrowIfNull(layers);
        foreach (var l in layers) ArgumentNullException.ThrowIfNull(l, nameof(layers));
        return new Network(SnnFunc.Layers.serial(List(layers.Select(l => l.Layer))), layers.ToArray());
    }

    /// <summary>Applies the i-th layer to the i-th input (stax's <c>parallel</c>).</summary>
    /// <param name="layers">One layer per input.</param>
    /// <returns>The network.</returns>
    public static Network Parallel(params Network[] layers)
    {
        ArgumentNullException.ThrowIfNull(layers);
        return new Network(SnnFunc.Layers.branches(List(layers.Select(l => l.Layer))));
    }

    /// <summary>Copies its single input <paramref name="copies"/> times.</summary>
    /// <param name="copies">The number of outputs.</param>
    /// <returns>The layer.</returns>
    public static Network FanOut(int copies) => new(SnnFunc.Layers.fanOut(copies));

    /// <summary>Sums its inputs (which must have the same shape).</summary>
    /// <returns>The layer.</returns>
    public static Network FanInSum() => new(SnnFunc.Layers.fanInSum);

    // Layers ---------------------------------------------------------------------------------------

    /// <summary>A fully connected layer: x [..., in] · W [in, out] (+ b). Time-major spike inputs go
    /// through one sparse accumulation for all steps.</summary>
    /// <param name="outputs">The number of output features.</param>
    /// <param name="scale">Initial weights are N(0, 1) · scale / sqrt(fan-in).</param>
    /// <param name="bias">Add a learned bias (initialised to 0).</param>
    /// <param name="dtype">The parameters' element type (Float32 by default).</param>
    /// <returns>The layer (parameters "W" and, with a bias, "b").</returns>
    public static Network Dense(int outputs, double scale = 1.0, bool bias = false, DType? dtype = null) =>
        new(SnnFunc.Layers.denseWith(new SnnFunc.Layers.DenseOptions(bias, scale, DTypeOr32(dtype)), outputs));

    /// <summary>LIF neurons over time (fused kernel): currents [T, B, N] to spikes [T, B, N].</summary>
    /// <param name="parameters">The neuron parameters (defaults when null).</param>
    /// <returns>The layer.</returns>
    public static Network Lif(LifParameters? parameters = null) =>
        new(SnnFunc.Layers.lif((parameters ?? new()).ToFSharp()));

    /// <summary>LIF neurons by scanning the step function (same numbers as <see cref="Lif"/>, op by op;
    /// every transform at every order).</summary>
    /// <param name="parameters">The neuron parameters (defaults when null).</param>
    /// <returns>The layer.</returns>
    public static Network LifGeneric(LifParameters? parameters = null) =>
        new(SnnFunc.Layers.lifGeneric((parameters ?? new()).ToFSharp()));

    /// <summary>Leaky-integrator readout over time (fused): currents [T, B, N] to membranes [T, B, N].</summary>
    /// <param name="parameters">The parameters (defaults when null).</param>
    /// <returns>The layer.</returns>
    public static Network Li(LiParameters? parameters = null) =>
        new(SnnFunc.Layers.li((parameters ?? new()).ToFSharp()));

    /// <summary>Adaptive LIF neurons over time.</summary>
    /// <param name="parameters">The parameters (defaults when null).</param>
    /// <returns>The layer.</returns>
    public static Network Alif(AlifParameters? parameters = null) =>
        new(SnnFunc.Layers.alif((parameters ?? new()).ToFSharp()));

    /// <summary>AdEx neurons over time (the BrainScaleS-2 neuron model).</summary>
    /// <param name="parameters">The parameters (defaults when null).</param>
    /// <returns>The layer.</returns>
    public static Network AdEx(AdExParameters? parameters = null) =>
        new(SnnFunc.Layers.adex((parameters ?? new()).ToFSharp()));

    /// <summary>Non-leaky integrate-and-fire neurons over time.</summary>
    /// <param name="parameters">The parameters (defaults when null).</param>
    /// <returns>The layer.</returns>
    public static Network IntegrateAndFire(IfParameters? parameters = null) =>
        new(SnnFunc.Layers.integrateAndFire((parameters ?? new()).ToFSharp()));

    /// <summary>A recurrent LIF layer: input weights "W" [in, n] and recurrent weights "R" [n, n]
    /// feeding back the previous step's spikes.</summary>
    /// <param name="neurons">The number of neurons n.</param>
    /// <param name="scale">Initial weights are N(0, 1) · scale / sqrt(fan-in).</param>
    /// <param name="parameters">The neuron parameters (defaults when null).</param>
    /// <returns>The layer.</returns>
    public static Network RecurrentLif(int neurons, double scale = 1.0, LifParameters? parameters = null) =>
        new(SnnFunc.Layers.recurrentLif((parameters ?? new()).ToFSharp(), scale, neurons));

    /// <summary>Dropout: in training zeroes each element with probability <paramref name="rate"/> and
    /// scales the rest by 1/(1 − rate); the identity in evaluation.</summary>
    /// <param name="rate">The drop probability in [0, 1).</param>
    /// <returns>The layer.</returns>
    public static Network Dropout(double rate) => new(SnnFunc.Layers.dropout(rate));

    /// <summary>A parameter-free layer from a function of one tensor that keeps the feature shape.</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="f">The function.</param>
    /// <returns>The layer.</returns>
    public static Network FromFunction(string name, Func<Tensor, Tensor> f) => new(SnnFunc.Layers.ofFunction(name, Fn(f)));

    /// <summary>A layer that scans a neuron step over the time axis of its input [T, B, N].</summary>
    /// <typeparam name="TState">The neuron state pytree (e.g. <see cref="LifState"/>).</typeparam>
    /// <param name="name">The layer's name.</param>
    /// <param name="initialState">(shape [B, N], dtype) ↦ the initial state.</param>
    /// <param name="step">(state, input) ↦ (new state, output), e.g. <c>(s, x) =&gt; Neurons.LifStep(p, s, x)</c>.</param>
    /// <returns>The layer.</returns>
    public static Network FromStep<TState>(string name, Func<int[], DType, TState> initialState, Func<TState, Tensor, ScanStep<TState>> step)
    {
        ArgumentNullException.ThrowIfNull(step);
        var fsStep = Fn<TState, Tensor, Tuple<TState, Tensor>>((s, x) =>
        {
            var r = step(s, x);
            return Tuple.Create(r.Carry, r.Output);
        });
        return new(SnnFunc.Layers.ofStep(name, Fn(initialState), fsStep));
    }

    /// <summary>A custom single-input layer with parameters.</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="init">(key, input feature shape) ↦ initial parameters and output shape; build the
    /// parameters with <see cref="NetworkParameters.FromWeights"/>.</param>
    /// <param name="apply">(parameters, input) ↦ output.</param>
    /// <returns>The layer.</returns>
    public static Network Custom(
        string name,
        Func<RandomKey, IReadOnlyList<int>, NetworkInit> init,
        Func<NetworkParameters, Tensor, Tensor> apply)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(init);
        ArgumentNullException.ThrowIfNull(apply);
        var fsInit = Fn<RandomBits.Key, FSharpList<int[]>, Tuple<Params, FSharpList<int[]>>>((key, shapes) =>
        {
            if (shapes.Length != 1) throw new ArgumentException($"{name}: expects one input shape, got {shapes.Length}", "inShapes");
            var r = init(new RandomKey(key), shapes.Head);
            return Tuple.Create(r.Parameters.Inner, List(r.OutputShapes.Select(s => s.ToArray())));
        });
        var fsApply = Microsoft.FSharp.Core.FuncConvert.FromFunc<Params, Mode, FSharpList<Tensor>, FSharpList<Tensor>>((p, _, xs) =>
        {
            if (xs.Length != 1) throw new ArgumentException($"{name}: expects one input, got {xs.Length}", "inputs");
            return List([apply(new NetworkParameters(p), xs.Head)]);
        });
        return new(new Layer(name, fsInit, fsApply));
    }

    /// <inheritdoc/>
    public override string ToString() => Name;
}
