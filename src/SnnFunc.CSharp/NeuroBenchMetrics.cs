using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using SnnFunc;

namespace SnnFunc.CSharp;

/// <summary>Which rules the NeuroBench metrics are aggregated with (the core's <c>NeuroBenchMode</c>).</summary>
public enum NeuroBenchAggregation
{
    /// <summary>The reference harness exactly: a projection's operations at one step are all ACs when every
    /// value of the whole batch's input is in {-1, 0, 1}, else all MACs; accuracy and activation sparsity
    /// weighted by batch size over the data set size.</summary>
    Reference,
    /// <summary>The AC/MAC test per sample and step (independent of batching); accuracy and sparsity over
    /// all samples.</summary>
    Corrected,
}

/// <summary>Settings of a <see cref="NeuroBenchMeter"/> (the core's <c>NeuroBenchOptions</c> without the mode,
/// which each report chooses).</summary>
public sealed record NeuroBenchSettings
{
    /// <summary>The harness's <c>len(dataloader.dataset)</c>, the divisor of the batch-weighted metrics in
    /// Reference mode; null for the samples processed.</summary>
    public int? DatasetSize { get; init; }

    /// <summary>The populations whose outputs count as activations; null for every spiking population.</summary>
    public IReadOnlyList<string>? Activations { get; init; }

    /// <summary>Event-driven runs: the time bin in seconds of the activation sparsity; null for each
    /// population's own step.</summary>
    public double? EventBin { get; init; }

    internal NeuroBenchOptions ToFSharp() =>
        new(
            NeuroBenchMode.Reference,
            DatasetSize is int n ? FSharpOption<int>.Some(n) : FSharpOption<int>.None,
            Activations is null ? FSharpOption<FSharpList<string>>.None : FSharpOption<FSharpList<string>>.Some(ListModule.OfSeq(Activations)),
            EventBin is double b ? FSharpOption<double>.Some(b) : FSharpOption<double>.None);
}

/// <summary>The NeuroBench metrics of a network over the batches a <see cref="NeuroBenchMeter"/> measured;
/// synaptic operations and membrane updates are per sample.</summary>
/// <param name="Aggregation">The rules of the report.</param>
/// <param name="Samples">Samples processed.</param>
/// <param name="Footprint">Bytes of the parameters and buffers.</param>
/// <param name="ParameterCount">Elements of every parameter tensor.</param>
/// <param name="ConnectionSparsity">Zero weights over all weights (4 decimals); null without projections.</param>
/// <param name="ActivationSparsity">The fraction of zero activations.</param>
/// <param name="DenseSynapticOperations">Operations with every input and weight taken as non-zero.</param>
/// <param name="EffectiveMacs">Effective operations of non-spiking calls.</param>
/// <param name="EffectiveAcs">Effective operations of spiking calls.</param>
/// <param name="MembraneUpdates">Membrane updates.</param>
/// <param name="ClassificationAccuracy">Null when no batch had predictions.</param>
public sealed record NeuroBenchReport(
    NeuroBenchAggregation Aggregation,
    int Samples,
    long Footprint,
    long ParameterCount,
    double? ConnectionSparsity,
    double ActivationSparsity,
    double DenseSynapticOperations,
    double EffectiveMacs,
    double EffectiveAcs,
    double MembraneUpdates,
    double? ClassificationAccuracy);

/// <summary>Measures a network's NeuroBench metrics batch by batch (the core's <c>NeuroBench</c> module, with
/// the reference harness's definitions): the static metrics from the parameters, the workload metrics from
/// each run's observables. One measurement serves both aggregations.</summary>
/// <example><code>
/// var meter = new NeuroBenchMeter(graph, parameters);
/// foreach (var (x, labels) in batches)
/// {
///     var run = graph.Run(parameters, steps, dt, new Dictionary&lt;string, Tensor&gt; { ["x"] = x });
///     meter.Add(new Dictionary&lt;string, Tensor&gt; { ["x"] = x }, run,
///               NeuroBenchMeter.Argmax(Decoders.MaxOverTime(run["out"].Membrane)), labels);
/// }
/// Console.WriteLine(meter);   // both aggregations side by side
/// </code></example>
public sealed class NeuroBenchMeter
{
    private readonly NetworkGraph _graph;
    private readonly GraphParameters _parameters;
    private readonly NeuroBenchOptions _options;
    private NeuroBenchModule.Accumulator _accumulator;

    /// <summary>Starts a measurement of the network <paramref name="graph"/> with <paramref name="parameters"/>.</summary>
    /// <exception cref="ArgumentException">A setting is out of range, or a projection has no weight.</exception>
    public NeuroBenchMeter(NetworkGraph graph, GraphParameters parameters, NeuroBenchSettings? settings = null)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(parameters);
        _graph = graph;
        _parameters = parameters;
        _options = (settings ?? new NeuroBenchSettings()).ToFSharp();
        _accumulator = NeuroBenchModule.start(_options, graph.Inner, parameters.Inner);
    }

    /// <summary>Samples measured so far.</summary>
    public int Samples => _accumulator.Batches.Sum(b => b.Samples);

    /// <summary>Adds one time-stepped batch: the inputs given to <see cref="NetworkGraph.Run"/> and its result
    /// (every population recorded), with the batch's predicted classes and labels when it is classified.</summary>
    /// <exception cref="ArgumentException">A shape, a population or the number of predictions or labels is
    /// wrong; the message names it.</exception>
    public void Add(IReadOnlyDictionary<string, Tensor> inputs, GraphRunResult run, int[]? predictions = null, int[]? labels = null)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(run);
        var xs = MapModule.OfSeq(inputs.Select(kv => Tuple.Create(kv.Key, kv.Value)));
        Push(NeuroBenchModule.measureRun(_options, _graph.Inner, _parameters.Inner, xs, run.Inner), predictions, labels);
    }

    /// <summary>Adds one event-driven batch: the run's options, its input events and its result.</summary>
    /// <exception cref="ArgumentException">A batch size, a population or the number of predictions or labels
    /// is wrong; the message names it.</exception>
    public void AddEvents(EventRunOptions options, IReadOnlyDictionary<string, EventBuffer> inputs, EventRunResult run, int[]? predictions = null, int[]? labels = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(run);
        var xs = MapModule.OfSeq(inputs.Select(kv => Tuple.Create(kv.Key, kv.Value)));
        Push(NeuroBenchModule.measureEvents(_options, _graph.Inner, _parameters.Inner, options.ToFSharp(), xs, run.Inner), predictions, labels);
    }

    private void Push(NeuroBenchBatch batch, int[]? predictions, int[]? labels)
    {
        if ((predictions is null) != (labels is null))
            throw new ArgumentException("NeuroBenchMeter: give both predictions and labels, or neither");
        if (predictions is not null)
            batch = NeuroBenchModule.withAccuracy(predictions, labels, batch);
        _accumulator = NeuroBenchModule.add(batch, _accumulator);
    }

    private NeuroBenchResults Results(NeuroBenchAggregation aggregation)
    {
        var mode = aggregation == NeuroBenchAggregation.Reference ? NeuroBenchMode.Reference : NeuroBenchMode.Corrected;
        var options = new NeuroBenchOptions(mode, _options.DatasetSize, _options.Activations, _options.EventBin);
        return NeuroBenchModule.finish(new NeuroBenchModule.Accumulator(options, _accumulator.Static, _accumulator.Batches));
    }

    private static double? Value(FSharpOption<double> o) => FSharpOption<double>.get_IsSome(o) ? o.Value : null;

    /// <summary>The metrics of the batches so far under <paramref name="aggregation"/>.</summary>
    /// <exception cref="ArgumentException">No batch was added.</exception>
    public NeuroBenchReport Report(NeuroBenchAggregation aggregation = NeuroBenchAggregation.Reference)
    {
        var r = Results(aggregation);
        return new(
            aggregation,
            r.Samples,
            r.Footprint,
            r.ParameterCount,
            Value(r.ConnectionSparsity),
            r.ActivationSparsity,
            r.SynapticOperations.Dense,
            r.SynapticOperations.EffectiveMACs,
            r.SynapticOperations.EffectiveACs,
            r.MembraneUpdates,
            Value(r.ClassificationAccuracy));
    }

    /// <summary>The class of each row of [batch, classes] scores (ties to the lowest index).</summary>
    public static int[] Argmax(Tensor scores) => NeuroBenchModule.argmax(scores);

    /// <summary>Both aggregations as one readable block (the samples' <c>--neurobench</c> printout).</summary>
    public override string ToString() =>
        _accumulator.Batches.IsEmpty
            ? "NeuroBenchMeter (no batch yet)"
            : NeuroBenchModule.format(ListModule.OfSeq(new[] { Results(NeuroBenchAggregation.Reference), Results(NeuroBenchAggregation.Corrected) }));
}
