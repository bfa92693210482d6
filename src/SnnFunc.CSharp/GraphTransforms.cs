namespace SnnFunc.CSharp;

// Transform nodes of a NetworkGraph: the core's Transform union (identity ports, scale, threshold,
// flatten, per-neuron delays), wrapped so that its values are built only through GraphTransforms.

/// <summary>
/// A stateless (but for <see cref="GraphTransforms.NeuronDelay"/>) map of a node's input signal,
/// step by step: an identity port (NIR's <c>Output</c>), a scale, a threshold, a flatten or a
/// per-neuron delay. Build one with <see cref="GraphTransforms"/> and add it with
/// <see cref="NetworkGraph.Transform"/>; a transform node takes the sum of its inputs (of one shape)
/// and may feed any node. Its parameter, if any, is found under the node's name in
/// <see cref="GraphParameters"/> (<c>p["gain"]["scale"]</c>), drawn at initialisation in the node's
/// shape. (Named <c>GraphTransform</c> so that it does not clash with the core's
/// <c>SnnFunc.Transform</c> under <c>using SnnFunc;</c>.)
/// </summary>
public sealed class GraphTransform
{
    internal GraphTransform(Transform inner) => Inner = inner;

    internal Transform Inner { get; }

    /// <summary>The names of the transform's parameters: <c>scale</c>, <c>threshold</c> or
    /// <c>delay</c> (one at most; none for identity and flatten).</summary>
    public IReadOnlyList<string> ParameterNames => Inner switch
    {
        Transform.Scale => ["scale"],
        Transform.Threshold => ["threshold"],
        Transform.NeuronDelay => ["delay"],
        _ => [],
    };

    /// <inheritdoc/>
    public override string ToString() => Inner switch
    {
        Transform.Scale s => $"scale({s.Item.Name})",
        Transform.Threshold t => $"threshold({t.Item1.Name}, {t.Item2.Name})",
        Transform.Flatten f => $"flatten({f.startDim}, {f.endDim})",
        Transform.NeuronDelay d => $"delay({d.Item1.Name}, unit {d.timeUnit:g} s, dt {d.dt:g} s, at most {d.maxSteps} steps)",
        Transform.SumPool2d p => $"sumPool2d({p.Item.Kernel}, stride {p.Item.Stride}, padding {p.Item.Padding})",
        Transform.AvgPool2d p => $"avgPool2d({p.Item.Kernel}, stride {p.Item.Stride}, padding {p.Item.Padding})",
        _ => "identity",
    };
}

/// <summary>The transform nodes of a <see cref="NetworkGraph"/> (the core's <c>Transform</c> cases),
/// for <see cref="NetworkGraph.Transform"/>.</summary>
public static class GraphTransforms
{
    /// <summary>Passes its input on: a port, such as NIR's <c>Output</c> nodes (see
    /// <see cref="NetworkGraph.Output"/>) and the <c>Input</c>/<c>Output</c> nodes of nested graphs.</summary>
    public static GraphTransform Identity { get; } = new(Transform.Identity);

    /// <summary>x · p["scale"], elementwise, with the parameter <c>scale</c> of the node's shape
    /// (NIR's <c>Scale</c>).</summary>
    /// <param name="scale">The scale's initialiser, e.g. <see cref="Inits.Constant"/> or <see cref="Inits.FromTensor"/>.</param>
    /// <returns>The transform.</returns>
    public static GraphTransform Scale(Initializer scale)
    {
        ArgumentNullException.ThrowIfNull(scale);
        return new(Transform.NewScale(scale.Inner));
    }

    /// <summary>H(x − p["threshold"]): 1 above the threshold, 0 at or below it; its derivative is the
    /// surrogate's (NIR's <c>Threshold</c>). The parameter <c>threshold</c> has the node's shape.</summary>
    /// <param name="threshold">The threshold's initialiser.</param>
    /// <param name="surrogate">The surrogate derivative; null for the one NIR files are read with by
    /// default (<see cref="NirConventions.Default"/>'s, SuperSpike(100)).</param>
    /// <returns>The transform.</returns>
    public static GraphTransform Threshold(Initializer threshold, SpikeSurrogate? surrogate = null)
    {
        ArgumentNullException.ThrowIfNull(threshold);
        var fn = surrogate?.Fn ?? NirOptionsModule.defaults.Surrogate;
        return new(Transform.NewThreshold(threshold.Inner, fn));
    }

    /// <summary>Merges the per-sample axes <paramref name="startDim"/> .. <paramref name="endDim"/>
    /// (both included; negative counts from the end) of its input into one, e.g. [2, 3, 4] with (1, 2)
    /// gives [2, 12]; the defaults flatten everything to one axis. The axes are those of the node's
    /// shape, without the time and batch axes — as NIR counts them, though NIR's own default
    /// <c>start_dim</c> is 1 (a NIR <c>Flatten</c> read from a file keeps the file's numbers).</summary>
    /// <param name="startDim">The first axis to merge.</param>
    /// <param name="endDim">The last axis to merge.</param>
    /// <returns>The transform (the axes are checked against the input's shape by
    /// <see cref="NetworkGraph.Validate"/>).</returns>
    public static GraphTransform Flatten(int startDim = 0, int endDim = -1) => new(Transform.NewFlatten(startDim, endDim));

    /// <summary>The sum over each window of a [C, H, W] input (NIR's <c>SumPool2d</c>), e.g. of a
    /// convolutional population's spikes.</summary>
    /// <param name="kernelHeight">The window's height.</param>
    /// <param name="kernelWidth">The window's width.</param>
    /// <param name="strideHeight">The vertical stride (the window's height when 0).</param>
    /// <param name="strideWidth">The horizontal stride (the window's width when 0).</param>
    /// <param name="paddingHeight">Zero rows on each side (at most half the window).</param>
    /// <param name="paddingWidth">Zero columns on each side (at most half the window).</param>
    /// <returns>The transform (checked against its input by <see cref="NetworkGraph.Validate"/>).</returns>
    public static GraphTransform SumPool2d(int kernelHeight, int kernelWidth, int strideHeight = 0, int strideWidth = 0, int paddingHeight = 0, int paddingWidth = 0) =>
        new(Transform.NewSumPool2d(Pool(kernelHeight, kernelWidth, strideHeight, strideWidth, paddingHeight, paddingWidth)));

    /// <summary>The mean over each window, padding counted (NIR's <c>AvgPool2d</c>: the sum scaled by
    /// 1 / (kh kw)); the arguments as for <see cref="SumPool2d"/>.</summary>
    /// <param name="kernelHeight">The window's height.</param>
    /// <param name="kernelWidth">The window's width.</param>
    /// <param name="strideHeight">The vertical stride (the window's height when 0).</param>
    /// <param name="strideWidth">The horizontal stride (the window's width when 0).</param>
    /// <param name="paddingHeight">Zero rows on each side.</param>
    /// <param name="paddingWidth">Zero columns on each side.</param>
    /// <returns>The transform.</returns>
    public static GraphTransform AvgPool2d(int kernelHeight, int kernelWidth, int strideHeight = 0, int strideWidth = 0, int paddingHeight = 0, int paddingWidth = 0) =>
        new(Transform.NewAvgPool2d(Pool(kernelHeight, kernelWidth, strideHeight, strideWidth, paddingHeight, paddingWidth)));

    private static Pool2dOptions Pool(int kh, int kw, int sh, int sw, int ph, int pw) =>
        new(Tuple.Create(kh, kw), Tuple.Create(sh == 0 ? kh : sh, sw == 0 ? kw : sw), Tuple.Create(ph, pw));

    /// <summary>Delays each neuron by its own p["delay"] (NIR's <c>Delay</c>): the delay, in units of
    /// <paramref name="timeUnit"/> seconds, is rounded to whole steps of <paramref name="dt"/> seconds
    /// and kept within [0, maxSteps]. The parameter <c>delay</c> has the node's shape; the node keeps
    /// the last <paramref name="maxSteps"/> steps of its input as state.</summary>
    /// <param name="delay">The delays' initialiser, e.g. <see cref="Inits.FromTensor"/>.</param>
    /// <param name="timeUnit">Seconds per unit of the delays (1e-3 for milliseconds, 1 for seconds, dt for steps).</param>
    /// <param name="dt">The step in seconds; it must equal the run's step (checked by <see cref="NetworkGraph.Run"/>).</param>
    /// <param name="maxSteps">The largest delay in steps (&gt;= 1).</param>
    /// <returns>The transform.</returns>
    /// <exception cref="ArgumentException">The time unit or step is not positive and finite, or maxSteps &lt; 1.</exception>
    public static GraphTransform NeuronDelay(Initializer delay, double timeUnit, double dt, int maxSteps)
    {
        ArgumentNullException.ThrowIfNull(delay);
        // The core's Transform case has no checks of its own (the NIR reader derives these values).
        if (!(timeUnit > 0) || double.IsInfinity(timeUnit))
            throw new ArgumentException($"GraphTransforms.NeuronDelay: the time unit must be positive and finite, got {timeUnit:g}", nameof(timeUnit));
        if (!(dt > 0) || double.IsInfinity(dt))
            throw new ArgumentException($"GraphTransforms.NeuronDelay: the step must be positive and finite, got {dt:g}", nameof(dt));
        if (maxSteps < 1)
            throw new ArgumentException($"GraphTransforms.NeuronDelay: the largest delay must be >= 1 step, got {maxSteps}", nameof(maxSteps));
        return new(Transform.NewNeuronDelay(delay.Inner, timeUnit, dt, maxSteps));
    }
}
