using SnnFunc; using SnnFunc.CSharp;

namespace SnnFunc.CSharp.Tests;

/// The README's C# snippets, so that the README matches the real API. Changes are marked.
public class ReadmeExampleTests
{
    [Fact]
    public void FirstSnippet()
    {
var x = Tensor.FromArray(new float[] { 1, 2, 3 }, 3);
Func<Tensor, Tensor> f = t => (t.Sin() * t).Sum();
Tensor g = Autodiff.Grad(f)(x);                       // sin x + x cos x
var vg = Autodiff.ValueAndGrad(f, x);                 // vg.Value, vg.Gradient
var jv = Autodiff.Jvp(f, x, Tensor.OnesLike(x));      // jv.Value, jv.Tangent
Tensor h = Autodiff.Hessian(f, x);                    // [3, 3]
Func<Tensor, Tensor> perRow = Autodiff.Vmap(f);
var s = Autodiff.Scan((c, xt) => new ScanStep<Tensor>(c * 0.9f + xt, c), Tensor.Zeros(3), Tensor.Ones(5, 3));
// s.Carry [3], s.Outputs [5, 3]
float[] data = g.ToArray();
IReadOnlyList<int> shape = x.Shape;

        Assert.Equal(new[] { 3, 3 }, h.Shape);
        Assert.Equal(new[] { 5, 3 }, s.Outputs.Shape);
        Assert.Equal(3, data.Length);
        Assert.Equal(vg.Value.ToScalar(), jv.Value.ToScalar());
        Assert.Equal(new[] { 2 }, perRow(Tensor.Ones(2, 3)).Shape);
        Assert.Equal(new[] { 3 }, shape);
    }

    [Fact]
    public void RecordSnippet()
    {
        // Added: the inputs the snippet assumes.
        var x2 = Tensor.Ones(4, 3);
        var w1 = Tensor.Full([3, 5], 0.1);
        var w2 = Tensor.Full([5, 2], 0.2);
var r = Autodiff.ValueAndGrad((Mlp p) => (x2.MatMul(p.W1).Tanh().MatMul(p.W2)).Sum(), new Mlp(w1, w2));
// r.Gradient is an Mlp
        Assert.Equal(new[] { 3, 5 }, r.Gradient.W1.Shape);
        Assert.Equal(new[] { 5, 2 }, r.Gradient.W2.Shape);
    }

    [Fact]
    public void TrainingSnippet()
    {
        var epochs = 1; var batchesPerEpoch = 3; // Changed: the README uses 30 and 50 (the full run is the sample).
const double dt = 0.5e-3;
var data = Datasets.YinYang(seed: 0);                 // Train / Validation / Test
var net = Network.Sequential(
    Network.Dense(120, scale: 6),
    Network.Lif(new LifParameters { Dt = dt }),       // defaults: tauSyn 5 ms, tauMem 10 ms, SuperSpike(100)
    Network.Dense(3, scale: 2),
    Network.Li(new LiParameters { Dt = dt }));        // or fluently: Network.Dense(...).Then(Network.Lif(...))...
var keys = RandomKey.FromSeed(0).Split();
var parameters = net.Init(keys.First, 5).Parameters;
var optimizer = Optimizers.Adam(Schedules.CosineDecay(0.01, 30 * 50, alpha: 0.05));
var state = optimizer.Init(parameters);
Tensor Logits(NetworkParameters p, Tensor x) =>
    Decoders.MaxOverTime(net.Apply(p, Encoders.Latency(x, steps: 60, dt, tLate: 15e-3)));
List<Batch> batches = [];
var history = // Added: keep the result to check it.
Trainer.Run(epochs: epochs, batchesPerEpoch: batchesPerEpoch, step: (epoch, b) =>
{
    if (b == 0) batches = data.Train.Batches(100, keys.Second.FoldIn(epoch), dropLast: true).ToList();
    var vg = Autodiff.ValueAndGrad(p => Losses.CrossEntropy(Logits(p, batches[b].X), batches[b].Labels), parameters);
    (parameters, state) = optimizer.Step(parameters, vg.Gradient, state);
    return new Dictionary<string, double> { ["loss"] = vg.Value.ToScalar() };
});
Console.WriteLine($"test_accuracy={Losses.Accuracy(Logits(parameters, data.Test.X), data.Test.Labels):F4}");

        Assert.Single(history);
        Assert.True(history[0].Metrics["loss"] > 0);
    }

    [Fact]
    public void GraphSnippet()
    {
const double dt = 0.5e-3;
var g = NetworkGraph.Create()                         // every call returns a new graph
    .Input("x", 5)
    .Population("hidden", 100, Neurons.Lif(new LifParameters { Dt = dt }).WithInit("tauMem", Inits.Uniform(5e-3, 20e-3)))
    .Population("out", 3, Neurons.Li(new LiParameters { Dt = dt }))
    .Connect("x", "hidden", Projections.Dense(Inits.Normal(scale: 6)))
    .Connect("hidden", "hidden", Projections.Dense(Inits.Normal()).Inhibitory())   // recurrence
    .Connect("hidden", "out", Projections.Dense(Inits.Normal(scale: 2)).WithBias(Inits.Zeros));
var p = g.Init(RandomKey.FromSeed(0));                // p["hidden"]["tauMem"] [100], p["x->hidden"]["weight"] [5, 100]
        var p0 = p; // Added: the initial parameters, to check the step.
var inputs = new Dictionary<string, Tensor> { ["x"] = RandomKey.FromSeed(1).Bernoulli(0.05, [60, 16, 5]) };
int[] labels = [.. Enumerable.Range(0, 16).Select(i => i % 3)];
var optimizer = Optimizers.MultiTransform(          // by key path: weights fast, tauMem slowly, the rest fixed
    path => path.EndsWith("/weight") || path.EndsWith("/bias") ? "weights" : path == "hidden/tauMem" ? "tau" : "fixed",
    new Dictionary<string, Optimizer> { ["weights"] = Optimizers.Adam(0.01), ["tau"] = Optimizers.Adam(1e-4), ["fixed"] = Optimizers.SetToZero() });
var state = optimizer.Init(p);
var vg = Autodiff.ValueAndGradWithAux(q =>
{
    var r = g.Run(q, steps: 60, dt, inputs);          // r["out"].Membrane [60, 16, 3], r["hidden"].Spikes [60, 16, 100]
    var loss = Losses.CrossEntropy(Decoders.MaxOverTime(r["out"].Membrane!), labels) + Losses.FiringRate(r["hidden"].Spikes!, 2) * 0.01;
    return new ValueWithAux<GraphRunResult>(loss, r);
}, p);
(p, state) = optimizer.Step(p, vg.Gradient, state);  // vg.Gradient is a GraphParameters
var next = g.Run(p, 60, dt, inputs, record: ["out"], initial: vg.Aux.Final);   // continues from the final state

        Assert.True(vg.Value.ToScalar() > 0);
        Assert.Equal(new[] { 100 }, vg.Gradient["hidden"]["tauMem"].Shape);
        Assert.True(vg.Aux["hidden"].Spikes!.Sum().ToScalar() > 0, "the hidden population spikes");
        TestUtil.Identical(g.Run(p0, 60, dt, inputs)["out"].Membrane!, vg.Aux["out"].Membrane!);   // the aux is the run
        Assert.Equal(new[] { "out" }, next.Observed.Keys);
        Assert.Equal(new[] { 60, 16, 3 }, next["out"].Membrane!.Shape);
        var dTau = (p["hidden"]["tauMem"] - p0["hidden"]["tauMem"]).Abs().Max().ToScalar();
        Assert.InRange(dTau, 1e-6, 1.01e-4);
        Assert.True((p["x->hidden"]["weight"] - p0["x->hidden"]["weight"]).Abs().Max().ToScalar() > 5e-3);
        TestUtil.Identical(p0["hidden"]["vTh"], p["hidden"]["vTh"]);
    }

    [Fact]
    public void NirSnippet()
    {
        // Added: the graph and parameters of GraphSnippet, its first lines.
        const double dt = 0.5e-3;
        var g = NetworkGraph.Create()
            .Input("x", 5)
            .Population("hidden", 100, Neurons.Lif(new LifParameters { Dt = dt }).WithInit("tauMem", Inits.Uniform(5e-3, 20e-3)))
            .Population("out", 3, Neurons.Li(new LiParameters { Dt = dt }))
            .Connect("x", "hidden", Projections.Dense(Inits.Normal(scale: 6)))
            .Connect("hidden", "hidden", Projections.Dense(Inits.Normal()).Inhibitory())
            .Connect("hidden", "out", Projections.Dense(Inits.Normal(scale: 2)).WithBias(Inits.Zeros));
        var p = g.Init(RandomKey.FromSeed(0));
        // Changed: the README reads "ff_cubalif.nir" and writes "mine.nir" in the working folder.
        var nirFile = Path.Combine(AppContext.BaseDirectory, "fixtures", "nir", "ff_cubalif.nir");
        var mine = Path.Combine(Path.GetTempPath(), "snnfunc-readme-" + Guid.NewGuid().ToString("N") + ".nir");
        try
        {
var net = NirFiles.Read(nirFile);            // or NirFiles.Read(path, NirConventions.Seconds(1e-4)) for snnTorch
var x = RandomKey.FromSeed(2).Uniform([100, 1, .. net.Graph.ShapeOf(net.Inputs[0])], 0, 50);
var run = net.Graph.Run(net.Parameters, 100, net.Conventions.Dt, new Dictionary<string, Tensor> { [net.Inputs[0]] = x }, record: net.Outputs);
var y = run[net.Outputs[0]].Output;                   // [100, 1, 3]: NIR graphs end in Output nodes
NirFiles.Write(mine, g.Output("output", "out"), p);   // LIF/LI as CubaLIF/CubaLI; records time_unit and dt

            Assert.Equal(new[] { 100, 1, 3 }, y!.Shape);
            var fs = Nir.read(nirFile);
            var fr = GraphModule.run(fs.Item1, fs.Item2, RunConfigModule.recording(Microsoft.FSharp.Collections.ListModule.OfSeq(["output"]), RunConfigModule.steps(100, 1e-3)),
                Microsoft.FSharp.Collections.MapModule.OfSeq([Tuple.Create("input", x)]));
            TestUtil.Identical(fr.Item("output").Output, y);
            // Read back, the written graph runs as g (the file's Euler CubaLIF/CubaLI against the fused LIF/LI, in Float32).
            var back = NirFiles.Read(mine);
            Assert.Equal(1e-3, back.Conventions.TimeUnit);
            Assert.Equal(dt, back.Conventions.Dt);
            Assert.Equal(["output"], back.Outputs);
            var inputs = new Dictionary<string, Tensor> { ["x"] = RandomKey.FromSeed(1).Bernoulli(0.05, [60, 16, 5]) };
            var before = g.Run(p, 60, dt, inputs);
            var after = back.Graph.Run(back.Parameters, 60, back.Conventions.Dt, inputs, record: ["hidden", "output"]);
            Assert.Equal(before["hidden"].Spikes!.ToDoubleArray(), after["hidden"].Spikes!.ToDoubleArray());
            TestUtil.Close(before["out"].Membrane!, after["output"].Output!, 1e-4);
        }
        finally { File.Delete(mine); }
    }

    [Fact]
    public void EventsSnippet()
    {
        var values = Datasets.YinYang(seed: 1).Train.Take(32).X.Convert(DType.Float64); // Added: the README's inputs.
        var labels = Datasets.YinYang(seed: 1).Train.Take(32).Labels;
var lif = new LifParameters { TauMem = 20e-3, TauSyn = 5e-3 };
var g = NetworkGraph.Empty
    .Input("x", 5)
    .Population("hidden", 200, Neurons.Lif(lif))
    .Population("out", 3, Neurons.Lif(lif))
    .Connect("x", "hidden", Projections.Dense(Inits.Gaussian(1.5, 0.78)))
    .Connect("hidden", "out", Projections.Dense(Inits.Gaussian(0.93, 0.1)));
var p = g.Init(RandomKey.FromSeed(0), DType.Float64);
var x = EventBuffers.Latency(values, tEarly: 0.0, tLate: 30e-3);   // values [32, 5] in [0, 1]
var options = new EventRunOptions { TEnd = 60e-3, Capacity = 512 };   // Gradient = EventGradientKind.Solver: the same numbers
Tensor Loss(GraphParameters q)
{
    var run = g.RunEvents(q, options, new Dictionary<string, EventBuffer> { ["x"] = x });
    var t = EventBuffers.FirstSpikeTimes(run["out"]);                  // [32, 3], +inf where silent
    return EventLosses.TtfsCrossEntropy(t, labels, tau0: 0.5e-3, tau1: 6.4e-3, alpha: 3e-3, tMax: 60e-3);
}
var grads = Autodiff.Grad<GraphParameters>(Loss)(p);                  // grads["x->hidden"]["weight"], ...
        // Added: check what the comments say.
        Assert.Equal([5, 200], grads["x->hidden"]["weight"].Shape);
        Assert.Contains(grads["x->hidden"]["weight"].ToDoubleArray(), v => v != 0);
        options = options with { Gradient = EventGradientKind.Solver };
        var solver = Autodiff.Grad<GraphParameters>(Loss)(p)["hidden->out"]["weight"].ToDoubleArray();
        var eventProp = grads["hidden->out"]["weight"].ToDoubleArray();
        for (var i = 0; i < solver.Length; i++) Assert.Equal(eventProp[i], solver[i], 9);
    }

    [Fact]
    public void HardwareInTheLoopSnippet()
    {
        // Added: the graph, parameters and data the snippet assumes.
        var g = NetworkGraph.Create()
            .Input("x", 20)
            .Population("hidden", 30, Neurons.Lif(new LifParameters { Dt = 1e-3 }))
            .Population("out", 4, Neurons.Li(new LiParameters { Dt = 1e-3 }))
            .Connect("x", "hidden", Projections.Dense(Inits.Normal(scale: 5)))
            .Connect("hidden", "out", Projections.Dense(Inits.Normal(scale: 2)));
        var p = g.Init(RandomKey.FromSeed(0));
        var spikes = Tensor.FromArray(Enumerable.Range(0, 30 * 8 * 20).Select(k => (k * 7919) % 10 == 0 ? 1f : 0f).ToArray(), 30, 8, 20);
        int[] labels = [0, 1, 2, 3, 0, 1, 2, 3];
        var batchIndex = 1;
var chip = EmulatedChip.Create(seed: 0, new ChipOptions { TraceScales = new Dictionary<string, double> { ["out"] = 8 } });
var run = chip.Run(g, p, 30, 1e-3, new Dictionary<string, Tensor> { ["x"] = spikes }, trial: batchIndex);
var vg = Autodiff.ValueAndGrad(
    (GraphParameters q) => Losses.CrossEntropy(Decoders.MaxOverTime(run.WithSoftwareGradient(q, ["out"])["out"].Membrane!), labels), p);
// run.HardwareSeconds, run.SamplesPerSecond, run.JoulesPerSample, run.Raw["cadc/out"]
        Assert.Equal(8 * 30e-6, run.HardwareSeconds, 12);
        Assert.True(run.Raw.ContainsKey("cadc/out"));
        Assert.Contains(vg.Gradient["x->hidden"]["weight"].ToDoubleArray(), v => v != 0);
    }

    [Fact]
    public void NeuroBenchSnippet()
    {
        var graph = NetworkGraph.Create()
            .Input("x", 3)
            .Population("h", 4, Neurons.Lif(new LifParameters { Dt = 1e-3 }))
            .Population("out", 2, Neurons.Li(new LiParameters { Dt = 1e-3 }))
            .Connect("x", "h", Projections.Dense(Inits.Normal(5)))
            .Connect("h", "out", Projections.Dense(Inits.Normal(2)));
        var parameters = graph.Init(RandomKey.FromSeed(0));
        int steps = 10;
        double dt = 1e-3;
        var x = Tensor.Ones(steps, 2, 3);
        var labels = new[] { 0, 1 };
// The README's snippet:
var meter = new NeuroBenchMeter(graph, parameters, new NeuroBenchSettings { DatasetSize = 1000 });
var inputs = new Dictionary<string, Tensor> { ["x"] = x };
var run = graph.Run(parameters, steps, dt, inputs);
meter.Add(inputs, run, NeuroBenchMeter.Argmax(Decoders.MaxOverTime(run["out"].Membrane!)), labels);
NeuroBenchReport report = meter.Report(NeuroBenchAggregation.Corrected);   // report.EffectiveAcs, ...
Console.WriteLine(meter);                                                   // both, as the samples print them

        Assert.Equal(2, report.Samples);
        Assert.Equal(200.0, report.DenseSynapticOperations); // 10 steps × (3 · 4 + 4 · 2)
        Assert.Contains("Reference", meter.ToString());
    }
}
