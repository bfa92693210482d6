namespace SnnFunc.CSharp.Tests;

/// EmulatedChip and ChipRun, the facade of the BrainScaleS-2 emulator and of hardware-in-the-loop
/// training: an ideal chip gives NetworkGraph.Run's numbers; a noisy chip's observables carry the
/// software model's gradient; a graph too large for the chip fails with the limit named.
public class HardwareTests
{
    private const double Dt = 1e-3;
    private const int Steps = 30, Batch = 4;

    /// x (12) -> h (20 LIF) -> o (3 LI) with weights k / 32 on the chip's 6-bit grid.
    private static (NetworkGraph, GraphParameters, Dictionary<string, Tensor>) Net()
    {
        Tensor Grid(int a, int b, int seed) =>
            Tensor.FromArray(Enumerable.Range(0, a * b).Select(i => ((i * 7919 + seed) % 61 - 20) / 32.0).ToArray(), a, b);

        var g = NetworkGraph.Create()
            .Input("x", 12)
            .Population("h", 20, Neurons.Lif(new LifParameters { Dt = Dt }))
            .Population("o", 3, Neurons.Li(new LiParameters { Dt = Dt }))
            .Connect("x", "h", Projections.Dense(Inits.FromTensor(Grid(12, 20, 3))))
            .Connect("h", "o", Projections.Dense(Inits.FromTensor(Grid(20, 3, 5))));
        var n = Steps * Batch * 12;
        var x = Tensor.FromArray(Enumerable.Range(0, n).Select(k => (k * 7919) % 11 < 2 ? 1.0 : 0.0).ToArray(), Steps, Batch, 12);
        return (g, g.Init(RandomKey.FromSeed(0), DType.Float64), new() { ["x"] = x.Convert(DType.Float64) });
    }

    [Fact]
    public void AnIdealChipGivesTheSoftwareModelsNumbers()
    {
        var (g, p, inputs) = Net();
        var chip = EmulatedChip.Ideal(new ChipOptions { MembraneNoise = 0, ExactMembrane = true });
        var hw = chip.Run(g, p, Steps, Dt, inputs).Observed;
        var sw = g.Run(p, Steps, Dt, inputs);
        Assert.Equal(sw["h"].Spikes!.ToDoubleArray(), hw["h"].Spikes!.ToDoubleArray());
        Assert.Equal(sw["o"].Membrane!.ToDoubleArray(), hw["o"].Membrane!.ToDoubleArray());
        Assert.True(sw["h"].Spikes!.Sum().ToScalar() > 10);
    }

    [Fact]
    public void TheChipsObservablesCarryTheSoftwareGradient()
    {
        var (g, p, inputs) = Net();
        var chip = EmulatedChip.Create(seed: 3);
        var run = chip.Run(g, p, Steps, Dt, inputs, trial: 1);
        Assert.Equal(Batch * 30e-6, run.HardwareSeconds, 12);
        Assert.Equal(0.2 * 30e-6, run.JoulesPerSample, 12);
        Assert.True(run.Raw.ContainsKey("cadc/o"));
        var labels = new[] { 0, 1, 2, 0 };
        var vg = Autodiff.ValueAndGrad(q => Losses.CrossEntropy(Decoders.MaxOverTime(run.WithSoftwareGradient(q, ["o"])["o"].Membrane!), labels), p);
        // The value is the chip's; the gradient reaches both projections.
        Assert.Equal(Losses.CrossEntropy(Decoders.MaxOverTime(run.Observed["o"].Membrane!), labels).ToScalar(), vg.Value.ToScalar(), 12);
        Assert.True(vg.Gradient["x->h"]["weight"].Abs().Sum().ToScalar() > 0);
        Assert.True(vg.Gradient["h->o"]["weight"].Abs().Sum().ToScalar() > 0);
    }

    [Fact]
    public void AGraphTooLargeForTheChipNamesTheLimit()
    {
        var g = NetworkGraph.Create()
            .Input("x", 256)
            .Population("hidden", 247, Neurons.Lif(new LifParameters { Dt = Dt }))
            .Population("out", 10, Neurons.Li(new LiParameters { Dt = Dt }))
            .Connect("x", "hidden", Projections.Dense(Inits.Normal()))
            .Connect("hidden", "out", Projections.Dense(Inits.Normal()));
        var p = g.Init(RandomKey.FromSeed(0));
        var x = Tensor.Zeros(Steps, 1, 256);
        var e = Assert.ThrowsAny<ArgumentException>(() => EmulatedChip.Create(0).Run(g, p, Steps, Dt, new Dictionary<string, Tensor> { ["x"] = x }));
        Assert.Contains("514 neuron circuits", e.Message);
        Assert.Contains("'hidden'", e.Message);
    }

    [Fact]
    public void TheChipsSpikeTimesCarryEventPropsGradient()
    {
        var lif = new LifParameters { TauMem = 20e-3, TauSyn = 5e-3, VTh = 1.0, VReset = 0.0, VLeak = 0.0 };
        var g = NetworkGraph.Create()
            .Input("x", 5)
            .Population("h", 30, Neurons.Lif(lif))
            .Population("o", 3, Neurons.Lif(lif))
            .Connect("x", "h", Projections.Dense(Inits.Gaussian(1.5, 0.78)))
            .Connect("h", "o", Projections.Dense(Inits.Gaussian(0.93, 0.1)));
        var p = g.Init(RandomKey.FromSeed(0), DType.Float64);
        var x = EventBuffers.Latency(Tensor.FromArray(Enumerable.Range(0, 20).Select(i => (i * 37 % 17) / 17.0).ToArray(), 4, 5), 0, 30e-3);
        var inputs = new Dictionary<string, EventBuffer> { ["x"] = x };
        var run = EmulatedChip.Create(seed: 2, new ChipOptions { WeightScale = 15 }).RunEvents(g, p, 60e-3, 1e-4, inputs, trial: 1);
        Assert.Equal(4 * 60.1e-6, run.HardwareSeconds, 9);
        var labels = new[] { 0, 1, 2, 0 };
        var options = new EventRunOptions { TEnd = 60e-3, Capacity = 256 };
        Tensor Loss(GraphParameters q) =>
            EventLosses.TtfsCrossEntropy(EventBuffers.FirstSpikeTimes(run.WithSoftwareGradient(q, options)["o"]), labels, 0.5e-3, 6.4e-3, 3e-3, 60e-3);
        var vg = Autodiff.ValueAndGrad(Loss, p);
        // The replay reports the chip's spike times; the gradient reaches both projections.
        Assert.Equal(EventBuffers.FirstSpikeTimes(run["o"]).ToDoubleArray(), EventBuffers.FirstSpikeTimes(run.WithSoftwareGradient(p, options)["o"]).ToDoubleArray());
        Assert.True(vg.Gradient["x->h"]["weight"].Abs().Sum().ToScalar() > 0);
        Assert.True(vg.Gradient["h->o"]["weight"].Abs().Sum().ToScalar() > 0);
        Assert.Throws<ArgumentException>(() => run["nope"]);
    }
}
