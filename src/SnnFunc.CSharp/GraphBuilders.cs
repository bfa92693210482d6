using static SnnFunc.CSharp.Interop;

namespace SnnFunc.CSharp;

// The parts a NetworkGraph is built from: initialisers, population neurons, projections. Each wraps
// the F# core's value (Init, Neuron, Projection) and builds a new one per call, so they are
// immutable and the checks and their messages are the core's.

/// <summary>
/// A parameter initialiser: draws a tensor of a shape and dtype from a key. Used for projection
/// weights and biases and for per-neuron parameters (<see cref="PopulationNeuron.WithInit"/>). Build
/// one with <see cref="Inits"/>. (Named <c>Initializer</c>, not <c>Init</c>, so that it does not
/// clash with the core's <c>SnnFunc.Init</c> under <c>using SnnFunc;</c>.)
/// </summary>
public sealed class Initializer
{
    internal Initializer(Init inner) => Inner = inner;

    internal Init Inner { get; }

    /// <summary>A readable description, e.g. <c>normal(6)</c> or <c>uniform(0.005, 0.02)</c>.</summary>
    public string Name => Inner.Name;

    /// <summary>Draws a tensor (what a graph's initialisation does with this initialiser).</summary>
    /// <param name="key">The random key.</param>
    /// <param name="shape">The shape, e.g. [in, out] for weights.</param>
    /// <param name="fanIn">The number of inputs per output unit (1 for neuron parameters).</param>
    /// <param name="dtype">The element type (Float32 by default).</param>
    /// <returns>The tensor.</returns>
    public Tensor Draw(RandomKey key, int[] shape, int fanIn = 1, DType? dtype = null)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(shape);
        return Microsoft.FSharp.Core.FSharpFunc<RandomBits.Key, int[]>.InvokeFast(Inner.Draw, key.Key, shape, fanIn, DTypeOr32(dtype));
    }

    /// <inheritdoc/>
    public override string ToString() => Name;
}

/// <summary>The initialisers of graph parameters (the core's <c>Init</c> module).</summary>
public static class Inits
{
    /// <summary>N(0, 1) · scale / sqrt(fan-in).</summary>
    /// <param name="scale">The factor (finite).</param>
    /// <returns>The initialiser.</returns>
    /// <exception cref="ArgumentException">The scale is not finite.</exception>
    public static Initializer Normal(double scale = 1.0) => new(InitModule.normalWith(scale));

    /// <summary>Uniform on [low, high), e.g. per-neuron time constants drawn at initialisation.</summary>
    /// <param name="low">The lower bound.</param>
    /// <param name="high">The upper bound (above <paramref name="low"/>).</param>
    /// <returns>The initialiser.</returns>
    /// <exception cref="ArgumentException">The bounds are not finite with low &lt; high.</exception>
    public static Initializer Uniform(double low, double high) => new(InitModule.uniform(low, high));

    /// <summary>N(mean, std²), not scaled by the fan-in: absolute weights, as published event-based setups give them
    /// (e.g. N(1.5, 0.78) for Yin-Yang).</summary>
    /// <param name="mean">The mean.</param>
    /// <param name="std">The standard deviation (&gt;= 0).</param>
    /// <returns>The initialiser.</returns>
    /// <exception cref="ArgumentException">The mean or std is not finite, or std is negative.</exception>
    public static Initializer Gaussian(double mean, double std) => new(InitModule.gaussian(mean, std));

    /// <summary>Every element <paramref name="value"/>.</summary>
    /// <param name="value">The value (finite).</param>
    /// <returns>The initialiser.</returns>
    /// <exception cref="ArgumentException">The value is not finite.</exception>
    public static Initializer Constant(double value) => new(InitModule.constant(value));

    /// <summary>Every element 0 (e.g. for biases).</summary>
    public static Initializer Zeros { get; } = new(InitModule.zeros);

    /// <summary>A given tensor (converted to the graph's dtype), e.g. weights trained elsewhere; its
    /// shape must be the one asked for.</summary>
    /// <param name="tensor">The tensor.</param>
    /// <returns>The initialiser.</returns>
    public static Initializer FromTensor(Tensor tensor) => new(InitModule.ofTensor(tensor));

    /// <summary>An initialiser of your own.</summary>
    /// <param name="name">The name shown in descriptions.</param>
    /// <param name="draw">(key, shape, fan-in, dtype) ↦ a tensor of that shape and dtype.</param>
    /// <returns>The initialiser.</returns>
    public static Initializer Custom(string name, Func<RandomKey, IReadOnlyList<int>, int, DType, Tensor> draw)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(draw);
        var fs = Microsoft.FSharp.Core.FuncConvert.FromFunc<RandomBits.Key, int[], int, DType, Tensor>(
            (key, shape, fanIn, dtype) => draw(new RandomKey(key), shape, fanIn, dtype));
        return new(new Init(name, fs));
    }
}

/// <summary>
/// The neuron of a population in a <see cref="NetworkGraph"/>: a model with its parameters, and
/// initialisers for the parameters that differ per neuron. Build one with <see cref="Neurons.Lif"/>,
/// <see cref="Neurons.Li"/>, <see cref="Neurons.Alif"/>, <see cref="Neurons.AdEx"/> or
/// <see cref="Neurons.IntegrateAndFire"/>; every parameter starts homogeneous (a rank-0 tensor at
/// the given value) unless <see cref="WithInit"/> draws it per neuron.
/// </summary>
public sealed class PopulationNeuron
{
    internal PopulationNeuron(Neuron inner) => Inner = inner;

    internal Neuron Inner { get; }

    /// <summary>The names of the model's parameters: the keys of the population's entry in
    /// <see cref="GraphParameters"/>, e.g. <c>tauSyn</c>, <c>tauMem</c>, <c>vLeak</c>, <c>vTh</c>,
    /// <c>vReset</c> for LIF.</summary>
    public IReadOnlyList<string> ParameterNames => NeuronModule.parameterNames(Inner.Model).ToArray();

    /// <summary>Whether the model emits spikes (LI does not: its output is the membrane).</summary>
    public bool IsSpiking => NeuronModule.isSpiking(Inner.Model);

    /// <summary>The parameters drawn per neuron, with their initialisers.</summary>
    public IReadOnlyDictionary<string, Initializer> PerNeuronInits =>
        Inner.Inits.ToDictionary(kv => kv.Key, kv => new Initializer(kv.Value));

    /// <summary>This neuron with parameter <paramref name="parameter"/> drawn per neuron at
    /// initialisation, e.g. <c>.WithInit("tauMem", Inits.Uniform(5e-3, 20e-3))</c>: heterogeneous
    /// populations, learnable per-neuron time constants and thresholds.</summary>
    /// <param name="parameter">The parameter's name (one of <see cref="ParameterNames"/>).</param>
    /// <param name="init">Its initialiser.</param>
    /// <returns>The new neuron (this one is unchanged).</returns>
    /// <exception cref="ArgumentException">The model has no such parameter; the message lists those it has.</exception>
    public PopulationNeuron WithInit(string parameter, Initializer init)
    {
        ArgumentNullException.ThrowIfNull(init);
        return new(NeuronModule.withInit(parameter, init.Inner, Inner));
    }

    /// <inheritdoc/>
    public override string ToString()
    {
        var model = Inner.Model switch
        {
            NeuronModel.LifModel => "lif",
            NeuronModel.LiModel => "li",
            NeuronModel.AlifModel => "alif",
            NeuronModel.AdExModel => "adex",
            NeuronModel.IfModel => "if",
            NeuronModel.NirModel n => "nir " + NirKindName(n.Item.Kind),
            _ => Inner.Model.ToString(),
        };
        // A NIR neuron has every parameter from an initialiser (the file's tensors): not worth listing.
        return Inner.Inits.IsEmpty || Inner.Model.IsNirModel ? model : $"{model}({string.Join(", ", Inner.Inits.Select(kv => $"{kv.Key}: {kv.Value.Name}"))})";
    }

    // NIR's class names of its neuron primitives.
    private static string NirKindName(NirNeuronKind kind) =>
        kind.IsNirCubaLif ? "CubaLIF" : kind.IsNirLif ? "LIF" : kind.IsNirCubaLi ? "CubaLI" : kind.IsNirLi ? "LI" : kind.IsNirIf ? "IF" : "I";
}

public static partial class Neurons
{
    // Population neurons for NetworkGraph -------------------------------------------------------

    /// <summary>A population neuron of the LIF model (for <see cref="NetworkGraph.Population(string, int, PopulationNeuron)"/>).</summary>
    /// <param name="parameters">The parameters (defaults when null); the step length is their <c>Dt</c>.</param>
    /// <returns>The neuron.</returns>
    /// <exception cref="ArgumentException">A parameter is out of range; the message names it.</exception>
    public static PopulationNeuron Lif(LifParameters? parameters = null) =>
        new(NeuronModule.lif((parameters ?? new()).ToFSharp()));

    /// <summary>A population neuron of the leaky integrator (a non-spiking readout: its output is the membrane).</summary>
    /// <param name="parameters">The parameters (defaults when null).</param>
    /// <returns>The neuron.</returns>
    /// <exception cref="ArgumentException">A parameter is out of range.</exception>
    public static PopulationNeuron Li(LiParameters? parameters = null) =>
        new(NeuronModule.li((parameters ?? new()).ToFSharp()));

    /// <summary>A population neuron of the adaptive LIF model.</summary>
    /// <param name="parameters">The parameters (defaults when null).</param>
    /// <returns>The neuron.</returns>
    /// <exception cref="ArgumentException">A parameter is out of range.</exception>
    public static PopulationNeuron Alif(AlifParameters? parameters = null) =>
        new(NeuronModule.alif((parameters ?? new()).ToFSharp()));

    /// <summary>A population neuron of the AdEx model (the BrainScaleS-2 neuron).</summary>
    /// <param name="parameters">The parameters (defaults when null).</param>
    /// <returns>The neuron.</returns>
    /// <exception cref="ArgumentException">A parameter is out of range.</exception>
    public static PopulationNeuron AdEx(AdExParameters? parameters = null) =>
        new(NeuronModule.adex((parameters ?? new()).ToFSharp()));

    /// <summary>A population neuron of the non-leaky integrate-and-fire model.</summary>
    /// <param name="parameters">The parameters (defaults when null).</param>
    /// <returns>The neuron.</returns>
    /// <exception cref="ArgumentException">A parameter is out of range.</exception>
    public static PopulationNeuron IntegrateAndFire(IfParameters? parameters = null) =>
        new(NeuronModule.integrateAndFire((parameters ?? new()).ToFSharp()));
}

/// <summary>The shape of a projection's delay parameter.</summary>
public enum DelayShape
{
    /// <summary>One delay for the whole projection (rank 0).</summary>
    PerProjection,
    /// <summary>One per presynaptic neuron, [in] (axonal delays).</summary>
    PerInput,
    /// <summary>One per synapse, [in, out].</summary>
    PerSynapse,
}

/// <summary>The sign constraint of a projection's weights.</summary>
public enum SynapseSign
{
    /// <summary>Weights as they are.</summary>
    Mixed,

    /// <summary>|w|: excitatory synapses.</summary>
    Excitatory,

    /// <summary>−|w|: inhibitory synapses.</summary>
    Inhibitory,
}

/// <summary>
/// A projection between nodes of a <see cref="NetworkGraph"/>: how its input becomes the
/// postsynaptic currents (dense or sparse-masked weights [in, out]), an optional bias, a sign
/// constraint and a delay. Build one with <see cref="Projections"/> and refine it fluently, e.g.
/// <c>Projections.Dense(Inits.Normal(2)).WithBias().Inhibitory().Delayed(3)</c>; every call returns a
/// new projection. Its parameters are <c>weight</c>, <c>bias</c> (with a bias) and <c>delay</c>
/// (learnable delays). (Named <c>SynapticProjection</c> so that it does not clash with the core's
/// <c>SnnFunc.Projection</c> under <c>using SnnFunc;</c>.)
/// </summary>
public sealed class SynapticProjection
{
    internal SynapticProjection(Projection inner) => Inner = inner;

    internal Projection Inner { get; }

    /// <summary>The weights' initialiser.</summary>
    public Initializer Weight => new(Inner.Weight);

    /// <summary>The bias's initialiser (null: no bias).</summary>
    public Initializer? Bias => Inner.Bias is null ? null : new(Inner.Bias.Value);

    /// <summary>The sign constraint.</summary>
    public SynapseSign Sign => Inner.Sign.IsExcitatory ? SynapseSign.Excitatory : Inner.Sign.IsInhibitory ? SynapseSign.Inhibitory : SynapseSign.Mixed;

    /// <summary>Whether the weights are restricted to a fixed 0/1 mask.</summary>
    public bool IsSparse => Inner.Kind.IsSparse;

    /// <summary>This projection with a bias [out], drawn from <paramref name="init"/>.</summary>
    /// <param name="init">The bias's initialiser (zeros when null).</param>
    /// <returns>The new projection.</returns>
    public SynapticProjection WithBias(Initializer? init = null) =>
        new(ProjectionModule.withBias((init ?? Inits.Zeros).Inner, Inner));

    /// <summary>This projection with its per-sample output shape declared: needed when it feeds no
    /// population directly (e.g. a transform node or an output port); without it, its shape is that
    /// of the populations it feeds.</summary>
    /// <param name="shape">The output shape (positive dimensions), e.g. [3].</param>
    /// <returns>The new projection.</returns>
    /// <exception cref="ArgumentException">The shape is empty or not positive.</exception>
    public SynapticProjection WithOutShape(params int[] shape) => new(ProjectionModule.withOutShape(shape, Inner));

    /// <summary>This projection with a learnable delay in seconds (parameter "delay"), for event-driven runs
    /// (<see cref="EventRuns.RunEvents"/>) only; time-stepped runs refuse it.</summary>
    /// <param name="init">The delay's initialiser, e.g. <c>Inits.Constant(1e-3)</c>; every delay must be &gt;= 0.</param>
    /// <param name="axes">One delay per projection, per input neuron or per synapse.</param>
    /// <returns>The new projection.</returns>
    public SynapticProjection WithDelaySeconds(Initializer init, DelayShape axes = DelayShape.PerProjection)
    {
        ArgumentNullException.ThrowIfNull(init);
        var a = axes switch
        {
            DelayShape.PerInput => DelayAxes.PerInput,
            DelayShape.PerSynapse => DelayAxes.PerSynapse,
            _ => DelayAxes.PerProjection,
        };
        return new(ProjectionModule.delaySeconds(init.Inner, a, Inner));
    }

    /// <summary>The declared per-sample output shape (null: that of the populations it feeds).</summary>
    public IReadOnlyList<int>? OutShape => Inner.OutShape is null ? null : Array.AsReadOnly(Inner.OutShape.Value);

    /// <summary>This projection with excitatory synapses: the weights act as |w|.</summary>
    /// <returns>The new projection.</returns>
    public SynapticProjection Excitatory() => new(ProjectionModule.excitatory(Inner));

    /// <summary>This projection with inhibitory synapses: the weights act as −|w|.</summary>
    /// <returns>The new projection.</returns>
    public SynapticProjection Inhibitory() => new(ProjectionModule.inhibitory(Inner));

    /// <summary>This projection with the same whole-step delay for every synapse.</summary>
    /// <param name="steps">The delay in time steps (&gt;= 0).</param>
    /// <returns>The new projection.</returns>
    /// <exception cref="ArgumentException">The delay is negative.</exception>
    public SynapticProjection Delayed(int steps) => new(ProjectionModule.delayed(steps, Inner));

    /// <summary>This projection with a whole-step delay per presynaptic neuron (axonal delays).</summary>
    /// <param name="steps">One delay in time steps (&gt;= 0) per input of the projection.</param>
    /// <returns>The new projection.</returns>
    /// <exception cref="ArgumentException">A delay is negative (their number is checked against the graph by
    /// <see cref="NetworkGraph.Validate"/>).</exception>
    public SynapticProjection DelayedPerInput(int[] steps) => new(ProjectionModule.delayedPerInput(steps, Inner));

    /// <summary>This projection with a learnable delay (parameter <c>delay</c>, in steps, kept within
    /// [0, maxSteps]): the input is read between whole steps by linear interpolation, so the delay
    /// has a gradient.</summary>
    /// <param name="initial">The initial delay in steps, in [0, maxSteps].</param>
    /// <param name="maxSteps">The largest delay (&gt;= 1).</param>
    /// <param name="perInput">One delay per presynaptic neuron ([in]) instead of one for the projection (rank 0).</param>
    /// <returns>The new projection.</returns>
    /// <exception cref="ArgumentException">The bounds are out of range.</exception>
    public SynapticProjection LearnableDelay(double initial, int maxSteps, bool perInput = false) =>
        new(ProjectionModule.learnableDelay(initial, maxSteps, perInput, Inner));

    /// <inheritdoc/>
    public override string ToString()
    {
        var parts = new List<string> { (IsSparse ? "sparse" : "dense") + $"({Inner.Weight.Name})" };
        if (Inner.Bias is not null) parts.Add($"bias {Inner.Bias.Value.Name}");
        if (Sign != SynapseSign.Mixed) parts.Add(Sign.ToString().ToLowerInvariant());
        if (Inner.OutShape is not null) parts.Add($"out [{string.Join(", ", Inner.OutShape.Value)}]");
        var delay = Inner.Delay switch
        {
            Delay.Steps s => $"delay {s.Item} steps",
            Delay.PerInputSteps d => $"delays [{string.Join(", ", d.Item)}] steps",
            Delay.Learnable l => $"learnable delay {l.initial} (max {l.maxSteps}{(l.perInput ? ", per input" : "")})",
            _ => null,
        };
        if (delay is not null) parts.Add(delay);
        return string.Join(", ", parts);
    }
}

/// <summary>The projections of a <see cref="NetworkGraph"/> (the core's <c>Projection</c> module).</summary>
public static class Projections
{
    /// <summary>A dense projection y = x · W with W [in, out] from <paramref name="weight"/> (no bias,
    /// mixed sign, no delay).</summary>
    /// <param name="weight">The weights' initialiser (<see cref="Inits.Normal"/> with scale 1 when null).</param>
    /// <returns>The projection.</returns>
    public static SynapticProjection Dense(Initializer? weight = null) =>
        new(ProjectionModule.dense((weight ?? DefaultWeight).Inner));

    /// <summary>A dense projection restricted to a fixed 0/1 mask [in, out]: y = x · (W ⊙ mask), so
    /// absent synapses stay absent under training.</summary>
    /// <param name="mask">The mask [in, out], only 0 and 1.</param>
    /// <param name="weight">The weights' initialiser (<see cref="Inits.Normal"/> with scale 1 when null).</param>
    /// <returns>The projection.</returns>
    /// <exception cref="ArgumentException">The mask is not a matrix of 0 and 1 (its shape is checked
    /// against the graph by <see cref="NetworkGraph.Validate"/>).</exception>
    public static SynapticProjection Sparse(Tensor mask, Initializer? weight = null) =>
        new(ProjectionModule.sparse(mask, (weight ?? DefaultWeight).Inner));

    /// <summary>A 2-d convolutional projection (PyTorch's conv2d, cross-correlation): input
    /// [C_in, H, W], weight [outChannels, C_in / groups, kernelHeight, kernelWidth], output
    /// [outChannels, H', W']. Its shape follows from its input, so it may feed a population, a
    /// pool or any transform.</summary>
    /// <param name="outChannels">The number of filters (a multiple of the groups).</param>
    /// <param name="kernelHeight">The kernel's height.</param>
    /// <param name="kernelWidth">The kernel's width.</param>
    /// <param name="weight">The weights' initialiser, fan-in C_in / groups · kh · kw (<see cref="Inits.Normal"/> with scale 1 when null).</param>
    /// <param name="options">Stride, padding, dilation and groups (stride 1, no padding, one group when null).</param>
    /// <returns>The projection.</returns>
    /// <exception cref="ArgumentException">An option is out of range (the input's channels and size are checked by <see cref="NetworkGraph.Validate"/>).</exception>
    public static SynapticProjection Conv2d(int outChannels, int kernelHeight, int kernelWidth, Initializer? weight = null, ConvolutionOptions? options = null) =>
        Conv(outChannels, [kernelHeight, kernelWidth], weight, options);

    /// <summary>A 1-d convolutional projection (PyTorch's conv1d): input [C_in, N], weight
    /// [outChannels, C_in / groups, kernel], output [outChannels, N'].</summary>
    /// <param name="outChannels">The number of filters (a multiple of the groups).</param>
    /// <param name="kernel">The kernel's length.</param>
    /// <param name="weight">The weights' initialiser (<see cref="Inits.Normal"/> with scale 1 when null).</param>
    /// <param name="options">Stride, padding, dilation and groups (stride 1, no padding, one group when null).</param>
    /// <returns>The projection.</returns>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public static SynapticProjection Conv1d(int outChannels, int kernel, Initializer? weight = null, ConvolutionOptions? options = null) =>
        Conv(outChannels, [kernel], weight, options);

    private static SynapticProjection Conv(int outChannels, int[] kernel, Initializer? weight, ConvolutionOptions? options)
    {
        var o = options ?? new ConvolutionOptions();
        int[] Each(int[]? given, int fallback, string name) =>
            given is null ? Enumerable.Repeat(fallback, kernel.Length).ToArray()
            : given.Length == kernel.Length ? given.ToArray()
            : throw new ArgumentException($"Projections.Conv: {name} needs {kernel.Length} entries (one per spatial axis), got {given.Length}", nameof(options));
        if (o.SamePadding && o.Padding is not null)
            throw new ArgumentException("Projections.Conv: give Padding or SamePadding, not both", nameof(options));
        var padding = o.SamePadding ? ConvPadding.Same : ConvPadding.NewExplicit(Each(o.Padding, 0, "Padding"));
        var spec = new ConvSpec(outChannels, kernel, Each(o.Stride, 1, "Stride"), padding, Each(o.Dilation, 1, "Dilation"), o.Groups);
        return new(ProjectionModule.conv(spec, (weight ?? DefaultWeight).Inner));
    }

    private static readonly Initializer DefaultWeight = new(InitModule.normal);
}

/// <summary>Options of <see cref="Projections.Conv2d"/> and <see cref="Projections.Conv1d"/>
/// (PyTorch's conv options), one entry per spatial axis in each array.</summary>
public sealed record ConvolutionOptions
{
    /// <summary>The stride per spatial axis (1 each when null).</summary>
    public int[]? Stride { get; init; }

    /// <summary>Zeros on each side per spatial axis (none when null).</summary>
    public int[]? Padding { get; init; }

    /// <summary>PyTorch's <c>padding="same"</c>: the output keeps the input's size (stride 1 and an
    /// odd dilated kernel extent). Exclusive with <see cref="Padding"/>.</summary>
    public bool SamePadding { get; init; }

    /// <summary>The dilation per spatial axis (1 each when null).</summary>
    public int[]? Dilation { get; init; }

    /// <summary>Channel groups: input and output channels split into this many independent convolutions.</summary>
    public int Groups { get; init; } = 1;
}
