using SnnFunc.Data;
using static SnnFunc.CSharp.Interop;

namespace SnnFunc.CSharp;

/// <summary>One spike event: a time in seconds and the flat (row-major) index of its neuron.</summary>
/// <param name="Time">The time in seconds.</param>
/// <param name="Neuron">The flat neuron index into the population's shape.</param>
public readonly record struct SpikeEvent(double Time, int Neuron);

/// <summary>Building, converting, encoding into and decoding <see cref="EventBuffer"/>s (F#: the
/// <c>EventBuffer</c> module). Buffers hold events sorted by (time, neuron), times in seconds. Methods that
/// read concrete data say so; the others are tensor programs that work inside <see cref="Autodiff"/>
/// transforms, with gradients through <see cref="EventBuffer.Times"/> only.</summary>
public static class EventBuffers
{
    /// <summary>A buffer with no events.</summary>
    /// <param name="shape">The population's shape.</param>
    /// <param name="batch">The batch shape (may be empty).</param>
    /// <param name="capacity">Slots per sample.</param>
    /// <param name="dtype">The dtype of the times (Float32 by default).</param>
    /// <returns>The buffer.</returns>
    public static EventBuffer Empty(IReadOnlyList<int> shape, IReadOnlyList<int> batch, int capacity, DType? dtype = null) =>
        EventBufferModule.empty(DTypeOr32(dtype), Shape(shape), Shape(batch), capacity);

    /// <summary>A buffer from per-event times [batch..., m] and flat neuron indices [batch..., m] (Int32), sorted
    /// by (time, neuron); an entry with neuron −1 or time +∞ is no event. More than <paramref name="capacity"/>
    /// events in a sample keep the earliest and count the rest in Overflow. Differentiable in the times.</summary>
    /// <param name="times">Event times in seconds (finite, ≥ 0, or +∞ for none).</param>
    /// <param name="neurons">Flat neuron indices in [−1, N).</param>
    /// <param name="shape">The population's shape.</param>
    /// <param name="capacity">Slots per sample.</param>
    /// <returns>The buffer.</returns>
    public static EventBuffer FromTimes(Tensor times, Tensor neurons, IReadOnlyList<int> shape, int capacity) =>
        EventBufferModule.ofTimes(Shape(shape), capacity, times, neurons);

    /// <summary>A buffer with one batch axis from per-sample lists of events, in any order (reads concrete data).</summary>
    /// <param name="events">The events of each sample.</param>
    /// <param name="shape">The population's shape.</param>
    /// <param name="capacity">Slots per sample.</param>
    /// <param name="dtype">The dtype of the times (Float32 by default).</param>
    /// <returns>The buffer.</returns>
    public static EventBuffer FromEvents(
        IReadOnlyList<IReadOnlyList<SpikeEvent>> events, IReadOnlyList<int> shape, int capacity, DType? dtype = null)
    {
        ArgumentNullException.ThrowIfNull(events);
        var rows = events.Select(r =>
        {
            ArgumentNullException.ThrowIfNull(r, nameof(events));
            return r.Select(e => Tuple.Create(e.Time, e.Neuron)).ToArray();
        }).ToArray();
        return EventBufferModule.ofEvents(DTypeOr32(dtype), Shape(shape), capacity, rows);
    }

    /// <summary>The events of a concrete buffer per flat batch position.</summary>
    /// <param name="buffer">The buffer.</param>
    /// <returns>The events of each sample, in time order.</returns>
    public static IReadOnlyList<IReadOnlyList<SpikeEvent>> ToEvents(EventBuffer buffer) =>
        EventBufferModule.toEvents(buffer)
            .Select(r => (IReadOnlyList<SpikeEvent>)r.Select(e => new SpikeEvent(e.Item1, e.Item2)).ToArray())
            .ToArray();

    /// <summary>Time-stepped spikes [T, B, N...] (non-negative integer counts) to a buffer with batch [B] and
    /// population [N...]: c spikes at step k become c events at time k · dt (reads concrete data).</summary>
    /// <param name="spikes">Spike counts [T, B, N...].</param>
    /// <param name="dt">The step length in seconds.</param>
    /// <param name="capacity">Slots per sample.</param>
    /// <returns>The buffer.</returns>
    public static EventBuffer FromDense(Tensor spikes, double dt, int capacity) => EventBufferModule.ofDense(spikes, dt, capacity);

    /// <summary>The events binned to steps: counts [T, batch..., shape...]; an event at t lands in step
    /// round(t / dt), one past the last step is an error (reads concrete data; not differentiable).</summary>
    /// <param name="buffer">The buffer.</param>
    /// <param name="steps">The number of steps T.</param>
    /// <param name="dt">The step length in seconds.</param>
    /// <returns>The counts.</returns>
    public static Tensor ToDense(EventBuffer buffer, int steps, double dt) => EventBufferModule.toDense(buffer, steps, dt);

    /// <summary>Linear latency coding straight to events: a value u in [0, 1] of x [batch..., N] spikes once at
    /// tEarly + u · (tLate − tEarly), differentiably in x. W&amp;P's Yin-Yang code is
    /// <c>Latency(x, 0, 30e-3)</c> on the five Yin-Yang inputs (bias value 0 spikes at t = 0).</summary>
    /// <param name="x">Values [batch..., N] in [0, 1].</param>
    /// <param name="tEarly">The time of the value 0 (s).</param>
    /// <param name="tLate">The time of the value 1 (s); below tEarly inverts the code.</param>
    /// <param name="threshold">Values below it send no spike (null: all spike).</param>
    /// <param name="biasTime">Appends a bias neuron (index N) spiking at this time in every sample.</param>
    /// <returns>Events of a population [N] ([N + 1] with the bias), capacity N (N + 1).</returns>
    public static EventBuffer Latency(Tensor x, double tEarly, double tLate, double? threshold = null, double? biasTime = null) =>
        EventBufferModule.latencyWith(new LatencyOptions(tEarly, tLate, Option(threshold), Option(biasTime)), x);

    /// <summary>The time of each neuron's earliest event, [batch..., N]; +∞ for silent neurons. Differentiable
    /// in the times: the gradient reaches each neuron's earliest event only (zero for silent neurons, never NaN).</summary>
    /// <param name="buffer">The buffer.</param>
    /// <returns>First-spike times.</returns>
    public static Tensor FirstSpikeTimes(EventBuffer buffer) => EventBufferModule.firstSpikeTimes(buffer);

    /// <summary>The number of events of each neuron, [batch..., N], in the dtype of the times (no gradient).</summary>
    /// <param name="buffer">The buffer.</param>
    /// <returns>Counts.</returns>
    public static Tensor SpikeCounts(EventBuffer buffer) => EventBufferModule.spikeCounts(buffer);

    /// <summary>Throws <see cref="InvalidOperationException"/> naming the samples that lost events (Overflow &gt; 0).</summary>
    /// <param name="buffer">The buffer.</param>
    public static void CheckNoOverflow(EventBuffer buffer) => EventBufferModule.checkNoOverflow(buffer);

    /// <summary>Checks the invariants of a concrete buffer (counts, (time, neuron) order, empty slots −1 at +∞);
    /// throws <see cref="ArgumentException"/> naming the sample and slot.</summary>
    /// <param name="buffer">The buffer.</param>
    public static void Validate(EventBuffer buffer) => EventBufferModule.validate(buffer);

    /// <summary>The samples at the given indices of the first batch axis, in that order.</summary>
    /// <param name="buffer">The buffer.</param>
    /// <param name="indices">The indices (may repeat).</param>
    /// <returns>The samples.</returns>
    public static EventBuffer Take(EventBuffer buffer, IReadOnlyList<int> indices) => EventBufferModule.take(Labels(indices), buffer);

    /// <summary><paramref name="length"/> samples from <paramref name="start"/> along the first batch axis.</summary>
    /// <param name="buffer">The buffer.</param>
    /// <param name="start">The first sample.</param>
    /// <param name="length">The number of samples.</param>
    /// <returns>The samples.</returns>
    public static EventBuffer Slice(EventBuffer buffer, int start, int length) => EventBufferModule.slice(start, length, buffer);

    /// <summary>Buffers joined along the first batch axis (capacity the largest; same population and dtype).</summary>
    /// <param name="buffers">The buffers.</param>
    /// <returns>The joined buffer.</returns>
    public static EventBuffer Concat(IEnumerable<EventBuffer> buffers) => EventBufferModule.concat(buffers);

    /// <summary>The sorted union of two buffers of the same population and batch shape (capacity the sum).</summary>
    /// <param name="a">The first buffer.</param>
    /// <param name="b">The second buffer.</param>
    /// <returns>The merged buffer.</returns>
    public static EventBuffer Merge(EventBuffer a, EventBuffer b) => EventBufferModule.merge(a, b);
}

/// <summary>Losses (rank-0, differentiable) and metrics of event-driven outputs (F#: <c>EventLoss</c>). Times above
/// <c>tMax</c>, and silent neurons (+∞), count as spiking at <c>tMax</c> with zero gradient, so losses stay finite.</summary>
public static class EventLosses
{
    /// <summary>Wunderlich &amp; Pehle's time-to-first-spike cross-entropy: the batch mean of
    /// −log softmax(−t/τ0)_label + α(exp(t_label/τ1) − 1). Yin-Yang values: τ0 = 0.5 ms, τ1 = 6.4 ms, α = 3e-3.</summary>
    /// <param name="firstTimes">First-spike times [B, C].</param>
    /// <param name="labels">B labels in [0, C).</param>
    /// <param name="tau0">τ0 in seconds.</param>
    /// <param name="tau1">τ1 in seconds.</param>
    /// <param name="alpha">α (≥ 0).</param>
    /// <param name="tMax">The time that silent and later neurons count as (e.g. the run's end).</param>
    /// <returns>The loss.</returns>
    public static Tensor TtfsCrossEntropy(
        Tensor firstTimes, IReadOnlyList<int> labels, double tau0, double tau1, double alpha, double tMax) =>
        EventLoss.ttfsCrossEntropy(tau0, tau1, alpha, tMax, firstTimes, Labels(labels));

    /// <summary>As <see cref="TtfsCrossEntropy"/>, but a sample whose label neuron is silent (first time above
    /// tMax) adds no loss and no gradient (Wunderlich &amp; Pehle's policy; the mean still divides by the batch
    /// size). With the plain loss, such a sample still pushes the other outputs later, which can feed on itself
    /// until whole samples go silent; pair this one with weight bumping, which revives silent labels.</summary>
    /// <param name="firstTimes">First-spike times [B, C].</param>
    /// <param name="labels">B labels in [0, C).</param>
    /// <param name="tau0">τ0 in seconds.</param>
    /// <param name="tau1">τ1 in seconds.</param>
    /// <param name="alpha">α (≥ 0).</param>
    /// <param name="tMax">The time that silent and later neurons count as (e.g. the run's end).</param>
    /// <returns>The loss.</returns>
    public static Tensor TtfsCrossEntropySkipSilent(
        Tensor firstTimes, IReadOnlyList<int> labels, double tau0, double tau1, double alpha, double tMax) =>
        EventLoss.ttfsCrossEntropySkipSilent(tau0, tau1, alpha, tMax, firstTimes, Labels(labels));

    /// <summary>Mean squared error of first-spike times (clipped at tMax) against targets, in s².</summary>
    /// <param name="firstTimes">First-spike times.</param>
    /// <param name="target">Target times (broadcastable).</param>
    /// <param name="tMax">The time that silent and later neurons count as.</param>
    /// <returns>The loss.</returns>
    public static Tensor SpikeTimeMse(Tensor firstTimes, Tensor target, double tMax) => EventLoss.spikeTimeMse(tMax, target, firstTimes);

    /// <summary>The fraction of samples whose earliest first spike is the label's; all-silent samples and ties
    /// for the earliest time count as wrong (reads concrete data).</summary>
    /// <param name="firstTimes">First-spike times [B, C].</param>
    /// <param name="labels">B labels.</param>
    /// <returns>The accuracy in [0, 1].</returns>
    public static double TtfsAccuracy(Tensor firstTimes, IReadOnlyList<int> labels) => EventLoss.ttfsAccuracy(firstTimes, Labels(labels));

    /// <summary>Cross-entropy over the maximum voltages [B, C] of a leaky-integrator readout.</summary>
    /// <param name="maxVoltages">Max voltages [B, C].</param>
    /// <param name="labels">B labels.</param>
    /// <returns>The loss.</returns>
    public static Tensor MaxVoltageCrossEntropy(Tensor maxVoltages, IReadOnlyList<int> labels) =>
        EventLoss.maxVoltageCrossEntropy(maxVoltages, Labels(labels));

    /// <summary>Activity regulariser: the mean of relu(lower − count)² + relu(count − upper)² over spike counts.</summary>
    /// <param name="counts">Spike counts [..., N].</param>
    /// <param name="lower">The fewest spikes not penalised.</param>
    /// <param name="upper">The most spikes not penalised.</param>
    /// <returns>The penalty.</returns>
    public static Tensor SpikeCountPenalty(Tensor counts, double lower, double upper) => EventLoss.spikeCountPenalty(lower, upper, counts);
}

/// <summary>One mini-batch of event inputs: events with batch [b] and one label per example.</summary>
/// <param name="Events">The events, batch axis [b].</param>
/// <param name="Labels">b class labels.</param>
public sealed record EventBatch(EventBuffer Events, IReadOnlyList<int> Labels)
{
    /// <summary>The number of examples.</summary>
    public int Count => Labels.Count;
}

/// <summary>A labelled data set of event inputs: one <see cref="EventBuffer"/> with batch [n] and n labels.</summary>
public sealed class LabeledEventDataset
{
    private LabeledEventDataset(EventDataset inner) => Inner = inner;

    internal EventDataset Inner { get; }

    /// <summary>A data set from events with one batch axis [n] and n labels.</summary>
    /// <param name="events">The events.</param>
    /// <param name="labels">The labels.</param>
    /// <returns>The data set.</returns>
    public static LabeledEventDataset Create(EventBuffer events, IReadOnlyList<int> labels) =>
        new(EventDatasetModule.create(events, Labels(labels).ToArray()));

    /// <summary>A dense data set encoded to events, e.g. <c>FromDataset(d, x =&gt; EventBuffers.Latency(x, 0, 30e-3))</c>.</summary>
    /// <param name="dataset">The dense data set.</param>
    /// <param name="encode">The encoder of the inputs [n, ...].</param>
    /// <returns>The event data set.</returns>
    public static LabeledEventDataset FromDataset(LabeledDataset dataset, Func<Tensor, EventBuffer> encode)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        return new(EventDatasetModule.ofDataset(Fn(encode), dataset.Inner));
    }

    /// <summary>The events, batch axis [n].</summary>
    public EventBuffer Events => Inner.Events;

    /// <summary>The labels.</summary>
    public IReadOnlyList<int> Labels => Inner.Labels;

    /// <summary>The number of examples.</summary>
    public int Count => Inner.Count;

    /// <summary>The examples at the given indices, in that order.</summary>
    /// <param name="indices">The indices.</param>
    /// <returns>The subset.</returns>
    public LabeledEventDataset Subset(IReadOnlyList<int> indices) => new(EventDatasetModule.subset(Interop.Labels(indices), Inner));

    /// <summary>The first n examples.</summary>
    /// <param name="n">The number of examples.</param>
    /// <returns>The subset.</returns>
    public LabeledEventDataset Take(int n) => new(EventDatasetModule.take(n, Inner));

    /// <summary>The examples in a random order drawn from the key.</summary>
    /// <param name="key">The key.</param>
    /// <returns>The shuffled data set.</returns>
    public LabeledEventDataset Shuffle(RandomKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return new(EventDatasetModule.shuffle(key.Key, Inner));
    }

    /// <summary>One epoch in mini-batches, cut as <see cref="LabeledDataset.Batches"/> cuts (same key, same order).</summary>
    /// <param name="batchSize">Examples per batch.</param>
    /// <param name="shuffleKey">The key of the shuffle; null keeps the stored order.</param>
    /// <param name="dropLast">Leave out a last batch smaller than <paramref name="batchSize"/>.</param>
    /// <returns>The batches.</returns>
    public IEnumerable<EventBatch> Batches(int batchSize, RandomKey? shuffleKey = null, bool dropLast = false)
    {
        var options = new BatchOptions(batchSize, dropLast, shuffleKey is not null);
        var key = shuffleKey?.Key ?? RandomBits.keyOfSeed(0L);
        return EventDatasetModule.batchesWith(options, key, Inner).Select(b => new EventBatch(b.Item1, b.Item2));
    }

    /// <inheritdoc/>
    public override string ToString() => $"LabeledEventDataset({Count} examples, {Events})";
}
