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
}
