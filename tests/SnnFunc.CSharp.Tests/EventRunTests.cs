namespace SnnFunc.CSharp.Tests;

/// Event-driven runs through the facade: a closed form, the core's numbers, gradients and errors.
public class EventRunTests
{
    private static readonly LiParameters Readout = new() { TauMem = 20e-3, TauSyn = 5e-3 };

    private static (NetworkGraph Graph, GraphParameters Parameters) OneReadout(double weight)
    {
        var g = NetworkGraph.Empty
            .Input("x", 1)
            .Population("out", 1, Neurons.Li(Readout))
            .Connect("x", "out", Projections.Dense(Inits.Constant(weight)));
        return (g, g.Init(RandomKey.FromSeed(0), DType.Float64));
    }

    private static EventBuffer Input(double t) => EventBuffers.FromEvents([[new(t, 0)]], [1], 1, DType.Float64);

    [Fact]
    public void ReadoutMaximumHasItsClosedForm()
    {
        // One input spike at t0 of weight w: V(t0 + s) = w·τs/(τm − τs)·(e^{−s/τm} − e^{−s/τs}), whose
        // maximum for τm = 4τs lies at s* = ln 4 / (1/τs − 1/τm) with the value w·4^{−4/3}.
        var (g, p) = OneReadout(2.0);
        var r = g.RunEvents(p, new EventRunOptions { TEnd = 60e-3 }, new Dictionary<string, EventBuffer> { ["x"] = Input(3e-3) });
        Assert.Equal(2.0 * Math.Pow(4, -4.0 / 3), r.MaxVoltage("out").ToDoubleArray()[0], 12);
        Assert.Equal(3e-3 + Math.Log(4) / (1 / 5e-3 - 1 / 20e-3), r.MaxTime("out").ToDoubleArray()[0], 12);
        Assert.Equal(["out"], r.Readouts);
        Assert.Empty(r.SpikingPopulations);
        // The maximum is linear in the weight: its gradient is 4^{-4/3}.
        var grad = Autodiff.Grad((GraphParameters q) =>
            g.RunEvents(q, new EventRunOptions { TEnd = 60e-3 }, new Dictionary<string, EventBuffer> { ["x"] = Input(3e-3) }).MaxVoltage("out").Sum())(p);
        Assert.Equal(Math.Pow(4, -4.0 / 3), grad["x->out"]["weight"].ToDoubleArray()[0], 12);
    }

    [Fact]
    public void SpikesMatchTheCoreAndBothGradientsAgree()
    {
        var g = NetworkGraph.Empty
            .Input("x", 2)
            .Population("h", 3, Neurons.Lif(new LifParameters { TauMem = 20e-3, TauSyn = 5e-3, VTh = 0.2 }))
            .Connect("x", "h", Projections.Dense(Inits.Gaussian(1.5, 0.3)));
        var p = g.Init(RandomKey.FromSeed(1), DType.Float64);
        var x = EventBuffers.FromEvents([[new(1e-3, 0), new(2e-3, 1)], [new(0.5e-3, 1)]], [2], 2, DType.Float64);
        var inputs = new Dictionary<string, EventBuffer> { ["x"] = x };
        var r = g.RunEvents(p, new EventRunOptions { Capacity = 8 }, inputs);
        Assert.True(r["h"].Count.ToInt32Array().Sum() > 0, "the neurons should spike");

        Tensor Loss(GraphParameters q, EventGradientKind kind)
        {
            var t = EventBuffers.FirstSpikeTimes(g.RunEvents(q, new EventRunOptions { Capacity = 8, Gradient = kind }, inputs)["h"]);
            return Tensor.Where(t.Lt(1.0), t, Tensor.ZerosLike(t)).Sum();
        }

        var a = Autodiff.Grad((GraphParameters q) => Loss(q, EventGradientKind.EventProp))(p)["x->h"]["weight"].ToDoubleArray();
        var b = Autodiff.Grad((GraphParameters q) => Loss(q, EventGradientKind.Solver))(p)["x->h"]["weight"].ToDoubleArray();
        for (var i = 0; i < a.Length; i++) Assert.Equal(a[i], b[i], 9);
        Assert.Contains(a, v => v != 0);
        // Against central differences of the simulation, weight by weight.
        var w = p["x->h"]["weight"].ToDoubleArray();
        const double h = 1e-6;
        for (var i = 0; i < w.Length; i++)
        {
            double At(double delta)
            {
                var shifted = (double[])w.Clone();
                shifted[i] += delta;
                return Loss(p.With("x->h", "weight", Tensor.FromArray(shifted, 2, 3)), EventGradientKind.EventProp).ToScalar();
            }

            Assert.Equal((At(h) - At(-h)) / (2 * h), a[i], 6);
        }
    }

    [Fact]
    public void ErrorsNameWhatIsWrong()
    {
        var (g, p) = OneReadout(1.0);
        var r = g.RunEvents(p, null, new Dictionary<string, EventBuffer> { ["x"] = Input(1e-3) });
        var e = Assert.Throws<ArgumentException>(() => r.MaxVoltage("nope"));
        Assert.Contains("'nope'", e.Message);
        Assert.Contains("out", e.Message);
        Assert.ThrowsAny<ArgumentException>(() => r["out"]);
        Assert.ThrowsAny<ArgumentException>(() => g.RunEvents(p, null, new Dictionary<string, EventBuffer>()));
        var delayed = Projections.Dense().WithDelaySeconds(Inits.Constant(1e-3));
        var stepped = NetworkGraph.Empty.Input("x", 1).Population("out", 1, Neurons.Li(Readout)).Connect("x", "out", delayed);
        Assert.ThrowsAny<ArgumentException>(() =>
            stepped.Run(stepped.Init(RandomKey.FromSeed(0)), 3, 1e-3, new Dictionary<string, Tensor> { ["x"] = Tensor.Zeros(3, 1) }));
    }
}
