using SnnFunc.Backends;
using static SnnFunc.CSharp.Interop;

namespace SnnFunc.CSharp;

/// <summary>Settings of an <see cref="EmulatedChip"/> (the core's <c>Bss2Config</c>).</summary>
public sealed record ChipOptions
{
    /// <summary>Hardware weight per model weight unit: w_hw = round(clamp(scale · w, -63, 63)).</summary>
    public double WeightScale { get; init; } = 32.0;

    /// <summary>Per projection (by node name), a weight scale other than <see cref="WeightScale"/>.</summary>
    public IReadOnlyDictionary<string, double>? WeightScales { get; init; }

    /// <summary>Per population, hxtorch's trace scale: the CADC reads 70 / scale codes per model
    /// unit (for readouts whose membrane would leave the ADC's range).</summary>
    public IReadOnlyDictionary<string, double>? TraceScales { get; init; }

    /// <summary>Apply the chip's fixed-pattern deviations.</summary>
    public bool FixedPatternNoise { get; init; } = true;

    /// <summary>Trial-to-trial membrane noise, the standard deviation of a resting membrane in model units.</summary>
    public double MembraneNoise { get; init; } = Bss2Figures.membraneNoise;

    /// <summary>Observe the emulated analog membrane and current instead of the 8-bit CADC samples.</summary>
    public bool ExactMembrane { get; init; }

    internal Bss2Config Apply(Bss2Config c) => new(
        WeightScale,
        Map(WeightScales),
        Map(TraceScales),
        FixedPatternNoise,
        MembraneNoise,
        c.TrialKey,
        ExactMembrane ? MembraneReadout.Exact : MembraneReadout.Cadc,
        c.Madc,
        c.CadcPeriod,
        c.SampleGap,
        c.EventCapacity);

    private static Microsoft.FSharp.Collections.FSharpMap<string, double> Map(IReadOnlyDictionary<string, double>? d) =>
        Microsoft.FSharp.Collections.MapModule.OfSeq((d ?? new Dictionary<string, double>()).Select(kv => Tuple.Create(kv.Key, kv.Value)));
}

/// <summary>
/// An emulated BrainScaleS-2 chip (the core's <c>Bss2Emulator</c>): one chip instance — the same
/// seed is the same chip — running a <see cref="NetworkGraph"/>'s forward pass as the chip would,
/// with its fixed-pattern noise, 6-bit weights, trial-to-trial noise and 8-bit readout. Train with
/// hardware in the loop: run a batch on the chip, then differentiate <see cref="ChipRun.WithSoftwareGradient"/>:
/// <code>
/// var chip = EmulatedChip.Create(seed: 0, new ChipOptions { TraceScales = new Dictionary&lt;string, double&gt; { ["out"] = 8 } });
/// var run = chip.Run(g, p, 30, 1e-3, inputs, trial: batchIndex);
/// var vg = Autodiff.ValueAndGrad(q => Losses.CrossEntropy(Decoders.MaxOverTime(run.WithSoftwareGradient(q, ["out"])["out"].Membrane), labels), p);
/// </code>
/// </summary>
public sealed class EmulatedChip
{
    internal EmulatedChip(Bss2Emulator inner) => Inner = inner;

    internal Bss2Emulator Inner { get; }

    /// <summary>The uncalibrated chip of a seed (every circuit at the shared trim setting).</summary>
    /// <param name="seed">The chip instance.</param>
    /// <param name="options">Its settings; null for the defaults.</param>
    /// <returns>The chip.</returns>
    public static EmulatedChip Create(long seed, ChipOptions? options = null) =>
        new(new Bss2Emulator(Chip.create(seed), Chip.untrimmed, (options ?? new ChipOptions()).Apply(Bss2ConfigModule.defaults)));

    /// <summary>A chip without fixed-pattern deviations; with <c>MembraneNoise = 0</c> and
    /// <c>ExactMembrane</c> it gives the software model's numbers.</summary>
    /// <param name="options">Its settings; null for the defaults.</param>
    /// <returns>The chip.</returns>
    public static EmulatedChip Ideal(ChipOptions? options = null) =>
        new(new Bss2Emulator(Chip.ideal, Chip.untrimmed, (options ?? new ChipOptions()).Apply(Bss2ConfigModule.defaults)));

    /// <summary>What the chip's circuits were trimmed for ("uncalibrated" for the shared setting).</summary>
    public string Calibration => Inner.Trim.Description;

    /// <summary>Runs a batch on the chip.</summary>
    /// <param name="graph">A feed-forward graph of LIF and LI populations with dense projections.</param>
    /// <param name="parameters">Its parameters (concrete values).</param>
    /// <param name="steps">Time steps.</param>
    /// <param name="dt">The step in model seconds (1000 times the hardware's).</param>
    /// <param name="inputs">One tensor per source, [T, batch, size].</param>
    /// <param name="trial">Selects the trial-to-trial noise: use a new number for every run.</param>
    /// <returns>The chip's observables.</returns>
    /// <exception cref="ArgumentException">The graph does not fit on the chip (the message names the limit and
    /// the node) or is not one the chip runs.</exception>
    public ChipRun Run(NetworkGraph graph, GraphParameters parameters, int steps, double dt, IReadOnlyDictionary<string, Tensor> inputs, long trial = 0)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(inputs);
        var config = RunConfigModule.steps(steps, dt);
        var xs = Microsoft.FSharp.Collections.MapModule.OfSeq(inputs.Select(kv => Tuple.Create(kv.Key, kv.Value)));
        return new ChipRun(Trial(trial).Run(graph.Inner, parameters.Inner, xs, config), graph, config, xs);
    }

    /// <summary>Runs a batch of event inputs on the chip (its spike-time view, jaxsnn's): the events are sent on
    /// the circuits' step grid, and the spikes come back at their threshold crossings on the 8 ns clock.</summary>
    /// <param name="graph">A feed-forward graph of LIF and LI populations with dense projections.</param>
    /// <param name="parameters">Its parameters (concrete values).</param>
    /// <param name="tEnd">The end of the run in model seconds.</param>
    /// <param name="dt">The circuits' step in model seconds (e.g. 1e-4).</param>
    /// <param name="inputs">One event buffer per source, [batch, capacity].</param>
    /// <param name="trial">Selects the trial-to-trial noise: use a new number for every run.</param>
    /// <returns>The chip's spikes and account.</returns>
    /// <exception cref="ArgumentException">The graph does not fit on the chip or is not one the chip runs.</exception>
    public ChipEventRun RunEvents(NetworkGraph graph, GraphParameters parameters, double tEnd, double dt, IReadOnlyDictionary<string, EventBuffer> inputs, long trial = 0)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(inputs);
        var xs = Microsoft.FSharp.Collections.MapModule.OfSeq(inputs.Select(kv => Tuple.Create(kv.Key, kv.Value)));
        return new ChipEventRun(Trial(trial).RunEvents(graph.Inner, parameters.Inner, xs, tEnd, dt), graph, xs);
    }

    private Bss2Emulator Trial(long trial)
    {
        var c = Inner.Config;
        return Inner.With(new Bss2Config(
            c.WeightScale, c.WeightScales, c.TraceScales, c.FixedPatternNoise, c.MembraneNoise,
            SnnFunc.Random.foldIn(SnnFunc.Random.key(trial), 1), c.Readout, c.Madc, c.CadcPeriod, c.SampleGap, c.EventCapacity));
    }

    /// <inheritdoc/>
    public override string ToString() => $"EmulatedChip(seed {Inner.Chip.Seed}, {Calibration})";
}

/// <summary>One batch's run on an <see cref="EmulatedChip"/>: its observables and hardware-time account.</summary>
public sealed class ChipRun
{
    private readonly NetworkGraph graph;
    private readonly RunConfig config;
    private readonly Microsoft.FSharp.Collections.FSharpMap<string, Tensor> inputs;

    internal ChipRun(Observables inner, NetworkGraph graph, RunConfig config, Microsoft.FSharp.Collections.FSharpMap<string, Tensor> inputs)
    {
        Inner = inner;
        this.graph = graph;
        this.config = config;
        this.inputs = inputs;
        Observed = new GraphRunResult(inner.Dense);
        Raw = inner.Raw.ToDictionary(kv => kv.Key, kv => kv.Value);
    }

    internal Observables Inner { get; }

    /// <summary>The chip's observables on the run's steps (spikes; membranes from the CADC samples).</summary>
    public GraphRunResult Observed { get; }

    /// <summary>Raw readouts: "cadc/&lt;population&gt;" [samples, batch, N] in ADC codes, "madc" [samples, batch].</summary>
    public IReadOnlyDictionary<string, Tensor> Raw { get; }

    /// <summary>Hardware seconds the batch took.</summary>
    public double HardwareSeconds => Inner.Account.Value.BackendSeconds;

    /// <summary>Samples per second of hardware time.</summary>
    public double SamplesPerSecond => Inner.Account.Value.SamplesPerSecond;

    /// <summary>Energy per sample in joules.</summary>
    public double JoulesPerSample => Inner.Account.Value.JoulesPerSample;

    /// <summary>The chip's observables with the software model's derivative (hardware in the loop):
    /// differentiate a loss of this with respect to <paramref name="parameters"/>.</summary>
    /// <param name="parameters">The parameters (those the run used), traced by the transform.</param>
    /// <param name="measuredMembranes">The populations whose observed membrane replaces the model's
    /// (the others take only the observed spikes); null for every population.</param>
    /// <returns>The observables of every population.</returns>
    public GraphRunResult WithSoftwareGradient(GraphParameters parameters, IEnumerable<string>? measuredMembranes = null)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var measured = measuredMembranes?.ToHashSet();
        var r = measured is null
            ? Hil.run(graph.Inner, parameters.Inner, config, inputs, Inner)
            : Hil.runWith(Fn<string, bool>(measured.Contains), graph.Inner, parameters.Inner, config, inputs, Inner);
        return new GraphRunResult(r);
    }
}

/// <summary>One batch's event run on an <see cref="EmulatedChip"/>: the chip's spikes and its hardware-time account.</summary>
public sealed class ChipEventRun
{
    private readonly NetworkGraph graph;
    private readonly Microsoft.FSharp.Collections.FSharpMap<string, EventBuffer> inputs;

    internal ChipEventRun(Observables inner, NetworkGraph graph, Microsoft.FSharp.Collections.FSharpMap<string, EventBuffer> inputs)
    {
        Inner = inner;
        this.graph = graph;
        this.inputs = inputs;
    }

    internal Observables Inner { get; }

    /// <summary>The spikes of a spiking population as the chip timestamped them, [batch, capacity].</summary>
    /// <param name="population">The population's name.</param>
    /// <exception cref="ArgumentException">No spiking population has that name.</exception>
    public EventBuffer this[string population] =>
        Inner.Events.TryGetValue(population ?? throw new ArgumentNullException(nameof(population)), out var b)
            ? b
            : throw new ArgumentException($"ChipEventRun: no spiking population '{population}'; the spiking populations are {string.Join(", ", Inner.Events.Keys)}", nameof(population));

    /// <summary>Hardware seconds the batch took.</summary>
    public double HardwareSeconds => Inner.Account.Value.BackendSeconds;

    /// <summary>Samples per second of hardware time.</summary>
    public double SamplesPerSecond => Inner.Account.Value.SamplesPerSecond;

    /// <summary>Energy per sample in joules.</summary>
    public double JoulesPerSample => Inner.Account.Value.JoulesPerSample;

    /// <summary>The chip's spike times with EventProp's derivative (event-based hardware in the loop): a software
    /// replay takes them as the solver's solutions. Differentiate a loss of this with respect to
    /// <paramref name="parameters"/>.</summary>
    /// <param name="parameters">The parameters (those the run used), traced by the transform.</param>
    /// <param name="options">The replay's settings (TEnd as the chip run's; defaults when null).</param>
    /// <returns>The spikes of every spiking population (the chip's) and the readouts' maxima.</returns>
    public EventRunResult WithSoftwareGradient(GraphParameters parameters, EventRunOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return new EventRunResult(Hil.runEvents(graph.Inner, parameters.Inner, (options ?? new()).ToFSharp(), inputs, Inner));
    }
}
