using SnnFunc;

namespace SnnFunc.CSharp;

/// <summary>How reverse mode differentiates an event-driven run (forward mode always uses the
/// tangent-linear solver).</summary>
public enum EventGradientKind
{
    /// <summary>EventProp: the adjoint equations of Wunderlich and Pehle, storing state only at events.</summary>
    EventProp,
    /// <summary>The transposed steps of the spike-time solver (automatic differentiation through it).</summary>
    Solver,
}

/// <summary>Settings of an event-driven run (the core's <c>EventConfig</c>).</summary>
public sealed record EventRunOptions
{
    /// <summary>The end of the simulated interval [0, TEnd], in seconds (default 30 ms).</summary>
    public double TEnd { get; init; } = 30e-3;

    /// <summary>Spike slots per spiking population per sample (default 64).</summary>
    public int Capacity { get; init; } = 64;

    /// <summary>How reverse mode differentiates the run (default EventProp).</summary>
    public EventGradientKind Gradient { get; init; } = EventGradientKind.EventProp;

    /// <summary>Raise an error when a population's spikes do not fit (default: count them in
    /// <see cref="EventBuffer.Overflow"/>).</summary>
    public bool FailOnOverflow { get; init; }

    /// <summary>More spikes than this at one instant (a zero-delay cascade) is an error.</summary>
    public int MaxEventsPerInstant { get; init; } = 10_000;

    internal EventConfig ToFSharp() =>
        new(TEnd, Capacity, Gradient == EventGradientKind.Solver ? SnnFunc.EventGradient.Solver : SnnFunc.EventGradient.EventProp,
            FailOnOverflow ? OverflowPolicy.Fail : OverflowPolicy.Report, MaxEventsPerInstant);
}

/// <summary>The result of <see cref="EventRuns.RunEvents"/>: the spikes of every spiking population,
/// and for every leaky-integrator (LI) population the exact maximum of its membrane over the run.</summary>
public sealed class EventRunResult
{
    internal EventRunResult(EventRun inner) => Inner = inner;

    internal EventRun Inner { get; }

    /// <summary>The spikes of a spiking population, [batch, capacity] events.</summary>
    /// <param name="population">The population's name.</param>
    /// <exception cref="ArgumentException">No spiking population has that name.</exception>
    public EventBuffer this[string population] => Inner.Item(population);

    /// <summary>The names of the spiking populations.</summary>
    public IReadOnlyList<string> SpikingPopulations => Inner.Spikes.Keys.ToList();

    /// <summary>The names of the LI readouts.</summary>
    public IReadOnlyList<string> Readouts => Inner.MaxVoltage.Keys.ToList();

    /// <summary>The maximum over [0, TEnd] of each neuron's membrane, [batch, N] (differentiable).</summary>
    /// <param name="readout">The LI population's name.</param>
    /// <exception cref="ArgumentException">No LI population has that name.</exception>
    public Tensor MaxVoltage(string readout) => Lookup(Inner.MaxVoltage, readout, nameof(MaxVoltage));

    /// <summary>The time of that maximum, [batch, N] (not differentiated).</summary>
    /// <param name="readout">The LI population's name.</param>
    /// <exception cref="ArgumentException">No LI population has that name.</exception>
    public Tensor MaxTime(string readout) => Lookup(Inner.MaxTime, readout, nameof(MaxTime));

    private static Tensor Lookup(Microsoft.FSharp.Collections.FSharpMap<string, Tensor> map, string name, string what)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (map.TryGetValue(name, out var t)) return t;
        throw new ArgumentException(
            $"EventRunResult.{what}: no LI readout '{name}'; the readouts are {string.Join(", ", map.Keys)}", nameof(name));
    }
}

/// <summary>Event-driven runs of a <see cref="NetworkGraph"/>.</summary>
public static class EventRuns
{
    /// <summary>Runs the graph event by event (exact simulation of current-based LIF and LI populations),
    /// every sample in parallel in one kernel call; differentiable in the parameters and the input spike times.</summary>
    /// <param name="graph">The graph: sources, LIF/LI populations, dense projections (delays in seconds allowed).</param>
    /// <param name="parameters">Its parameters (e.g. <see cref="NetworkGraph.Init"/> in Float64).</param>
    /// <param name="options">The run's settings (defaults when null).</param>
    /// <param name="inputs">One event buffer per source, by name, each [batch, capacity].</param>
    /// <returns>The spikes of the spiking populations and the maxima of the readouts.</returns>
    /// <exception cref="ArgumentException">The graph has a node the event simulation does not support, an input
    /// is missing or of the wrong shape, or a parameter is out of range; the message names the node.</exception>
    public static EventRunResult RunEvents(
        this NetworkGraph graph,
        GraphParameters parameters,
        EventRunOptions? options,
        IReadOnlyDictionary<string, EventBuffer> inputs)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(inputs);
        var xs = Microsoft.FSharp.Collections.MapModule.OfSeq(inputs.Select(kv => Tuple.Create(kv.Key, kv.Value)));
        return new(global::SnnFunc.Events.run(graph.Inner, parameters.Inner, (options ?? new()).ToFSharp(), xs));
    }
}
