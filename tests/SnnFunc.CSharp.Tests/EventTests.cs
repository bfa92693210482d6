using static SnnFunc.CSharp.Tests.TestUtil;

namespace SnnFunc.CSharp.Tests;

/// The event facade: EventBuffers, EventLosses and LabeledEventDataset, against the F# core and by hand.
public class EventTests
{
    private static readonly double Inf = double.PositiveInfinity;

    private static EventBuffer Sample() => EventBuffers.FromEvents(
        [
            [new(0.3, 1), new(0.1, 2), new(0.1, 0), new(0.2, 1)],
            [],
        ],
        [3], capacity: 3, DType.Float64);

    [Fact]
    public void FromEventsSortsCountsOverflowAndRoundTrips()
    {
        var b = Sample();
        Assert.Equal([2, 3], b.Times.Shape);
        Assert.Equal([3, 0], b.Count.ToInt32Array());
        Assert.Equal([1, 0], b.Overflow.ToInt32Array());
        var events = EventBuffers.ToEvents(b);
        Assert.Equal([new SpikeEvent(0.1, 0), new SpikeEvent(0.1, 2), new SpikeEvent(0.2, 1)], events[0]);
        Assert.Empty(events[1]);
        var e = Assert.Throws<InvalidOperationException>(() => EventBuffers.CheckNoOverflow(b));
        Assert.Contains("sample [0] lost 1", e.Message);
        EventBuffers.CheckNoOverflow(EventBuffers.Slice(b, 1, 1));
        EventBuffers.Validate(b);
        Assert.Throws<ArgumentException>(() => EventBuffers.Validate(b.WithTimes(Tensor.FromArray(new double[] { 0.2, 0.1, 0.3, 1, 1, 1 }, 2, 3))));
        var bad = Assert.Throws<ArgumentException>(() => EventBuffers.FromEvents([[new(0.1, 7)]], [3], 2));
        Assert.Contains("index 7", bad.Message);
    }

    [Fact]
    public void FirstSpikeTimesAndCountsWithTheirGradient()
    {
        var b = Sample();
        Assert.Equal([0.1, 0.2, 0.1, Inf, Inf, Inf], EventBuffers.FirstSpikeTimes(b).ToDoubleArray());
        Assert.Equal([1.0, 1.0, 1.0, 0, 0, 0], EventBuffers.SpikeCounts(b).ToDoubleArray());
        var w = Tensor.FromArray(new double[] { 1, 2, 3 }, 3);
        var g = Autodiff.Grad((Tensor t) =>
        {
            var f = EventBuffers.FirstSpikeTimes(b.WithTimes(t));
            return Tensor.Where(f.Lt(1e30), f * w, Tensor.ZerosLike(f)).Sum();
        })(b.Times);
        Assert.Equal([1.0, 3.0, 2.0, 0, 0, 0], g.ToDoubleArray());
        // Per sample under vmap: the same as batched.
        var mapped = Autodiff.Vmap<EventBuffer, Tensor>(EventBuffers.FirstSpikeTimes)(b);
        Assert.Equal(EventBuffers.FirstSpikeTimes(b).ToDoubleArray(), mapped.ToDoubleArray());
    }

    [Fact]
    public void DenseRoundTripAndLatencyCode()
    {
        var spikes = Tensor.FromArray(new double[] { 1, 0, 0, 2, 1, 1 }, 3, 1, 2);
        var b = EventBuffers.FromDense(spikes, 1e-3, 8);
        Assert.Equal(spikes.ToDoubleArray(), EventBuffers.ToDense(b, 3, 1e-3).ToDoubleArray());

        var x = Tensor.FromArray(new double[] { 0.0, 0.5, 1.0, 0.1 }, 2, 2);
        var l = EventBuffers.Latency(x, 0.0, 0.03, threshold: 0.2, biasTime: 0.001);
        Assert.Equal([3], l.Shape);
        var first = EventBuffers.FirstSpikeTimes(l).ToDoubleArray();
        Assert.Equal([Inf, Inf], [first[0], first[4]]);
        Close([0.015, 0.001, 0.03, 0.001], [first[1], first[2], first[3], first[5]], 1e-15);
        var gx = Autodiff.Grad((Tensor u) => EventBuffers.FirstSpikeTimes(EventBuffers.Latency(u, 0.03, 0.0)).Sum())(x);
        Close([-0.03, -0.03, -0.03, -0.03], gx.ToDoubleArray(), 1e-12);
    }

    [Fact]
    public void TakeConcatMerge()
    {
        var b = Sample();
        var t = EventBuffers.Take(b, [1, 0]);
        Assert.Equal([0, 3], t.Count.ToInt32Array());
        var c = EventBuffers.Concat([b, EventBuffers.Empty([3], [2], 5, DType.Float64)]);
        Assert.Equal([4, 5], c.Times.Shape);
        var m = EventBuffers.Merge(b, b);
        Assert.Equal([6, 0], m.Count.ToInt32Array());
        Assert.Equal([2, 0], m.Overflow.ToInt32Array());
    }

    [Fact]
    public void LossesEqualTheFSharpCoreAndStayFiniteForSilentNeurons()
    {
        var t = Tensor.FromArray(new double[] { 2e-3, 3e-3, Inf, Inf, 1e-3, 2e-3 }, 2, 3);
        int[] labels = [0, 0];
        var loss = EventLosses.TtfsCrossEntropy(t, labels, 0.5e-3, 6.4e-3, 3e-3, 30e-3);
        Assert.Equal(EventLoss.ttfsCrossEntropy(0.5e-3, 6.4e-3, 3e-3, 30e-3, t, labels).ToScalar(), loss.ToScalar());
        Assert.True(double.IsFinite(loss.ToScalar()));
        var g = Autodiff.Grad((Tensor u) => EventLosses.TtfsCrossEntropy(u, labels, 0.5e-3, 6.4e-3, 3e-3, 30e-3))(t);
        Assert.All(g.ToDoubleArray(), v => Assert.True(double.IsFinite(v)));
        Assert.Equal(0.0, g.ToDoubleArray()[2]);
        Assert.Equal(0.5, EventLosses.TtfsAccuracy(t, [0, 2]));
        // Sample 1's label (0) is silent: it adds nothing, sample 0 counts over the batch of 2.
        var skip = EventLosses.TtfsCrossEntropySkipSilent(t, [0, 0], 0.5e-3, 6.4e-3, 3e-3, 30e-3).ToScalar();
        var first = EventLosses.TtfsCrossEntropy(Tensor.FromArray(new double[] { 2e-3, 3e-3, Inf }, 1, 3), [0], 0.5e-3, 6.4e-3, 3e-3, 30e-3).ToScalar();
        Close([first / 2], [skip], 1e-15);
        Close([1.25], [EventLosses.SpikeCountPenalty(Tensor.FromArray(new double[] { 0, 3, 6, 1 }, 2, 2), 1, 4).ToScalar()], 1e-15);
        Assert.Equal(
            Losses.CrossEntropy(t.Neg().Minimum(Tensor.Scalar(0.0, DType.Float64)), labels).ToScalar(),
            EventLosses.MaxVoltageCrossEntropy(t.Neg().Minimum(Tensor.Scalar(0.0, DType.Float64)), labels).ToScalar());
        Close([2e-6], [EventLosses.SpikeTimeMse(F64(1e-3, Inf), F64(1e-3, 1e-3), 3e-3).ToScalar()], 1e-12);
    }

    [Fact]
    public void EventDatasetBatchesLikeTheDenseOne()
    {
        var dense = Datasets.YinYangGenerate(RandomKey.FromSeed(3), 10);
        var events = LabeledEventDataset.FromDataset(dense, x => EventBuffers.Latency(x, 0, 30e-3));
        Assert.Equal(10, events.Count);
        var key = RandomKey.FromSeed(4);
        var eb = events.Batches(4, key).ToList();
        var db = dense.Batches(4, key).ToList();
        Assert.Equal(db.Select(b => b.Count), eb.Select(b => b.Count));
        for (int i = 0; i < eb.Count; i++)
        {
            Assert.Equal(db[i].Labels, eb[i].Labels);
            Close(db[i].X.ToDoubleArray().Select(u => 30e-3 * u).ToArray(), EventBuffers.FirstSpikeTimes(eb[i].Events).ToDoubleArray(), 1e-6);
        }
        Assert.Equal(3, events.Take(3).Count);
        Assert.Equal(dense.Labels.Order(), events.Shuffle(key).Labels.Order());
        Assert.Throws<ArgumentException>(() => LabeledEventDataset.Create(events.Events, [0, 1]));
    }
}
