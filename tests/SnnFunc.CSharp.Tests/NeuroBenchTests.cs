namespace SnnFunc.CSharp.Tests;

/// NeuroBenchMeter, the facade of the core's NeuroBench module: a hand-counted case of the synaptic
/// operations, the same results as the F# module on the same runs, both aggregations, and the errors.
public class NeuroBenchTests
{
    private const double Dt = 1e-3;

    // W [3, 2] with non-zero weights per input row 1, 2, 0.
    private static readonly Tensor W = Tensor.FromArray(new[] { 1.0, 0.0, 2.0, 3.0, 0.0, 0.0 }, 3, 2);

    private static readonly NetworkGraph Net = NetworkGraph.Create()
        .Input("x", 3)
        .Population("h", 2, Neurons.Lif(new LifParameters { Dt = Dt }))
        .Connect("x", "h", Projections.Dense(Inits.FromTensor(W)));

    // [T = 2, B = 2, 3], all binary: t0 b0 [1, 0, 1], b1 [0, 1, 0]; t1 b0 [0, 1, 0], b1 [1, 1, 1].
    private static readonly Tensor X = Tensor.FromArray(new[] { 1.0, 0, 1, 0, 1, 0, 0, 1, 0, 1, 1, 1 }, 2, 2, 3);

    private static Dictionary<string, Tensor> Inputs(Tensor x) => new() { ["x"] = x };

    // The same network through the F# module.
    private static readonly Graph FsNet = GraphModule.connect("x", "h", ProjectionModule.dense(InitModule.ofTensor(W)),
        GraphModule.population("h", 2, NeuronModule.lif(new Snn.Lif.Spec(Snn.Lif.defaults.TauSyn, Snn.Lif.defaults.TauMem,
            Snn.Lif.defaults.VLeak, Snn.Lif.defaults.VTh, Snn.Lif.defaults.VReset, Snn.Lif.defaults.Reset, Dt,
            Snn.Lif.defaults.Surrogate, 0)), GraphModule.input("x", 3, GraphModule.empty)));

    [Fact]
    public void SynapticOperationsAreTheHandCountedOnesPerSample()
    {
        var p = Net.Init(RandomKey.FromSeed(0), DType.Float64);
        var meter = new NeuroBenchMeter(Net, p);
        meter.Add(Inputs(X), Net.Run(p, 2, Dt, Inputs(X)), new[] { 0, 1 }, new[] { 0, 0 });
        var r = meter.Report();
        // Effective ops per (t, b) = Σ_in [x ≠ 0] · (non-zero weights of row in): t0 b0 1 + 0, t0 b1 2,
        // t1 b0 2, t1 b1 1 + 2 + 0; all calls binary, so 8 ACs for 2 samples. Dense: 2 · 2 · 3 · 2 = 24.
        Assert.Equal(NeuroBenchAggregation.Reference, r.Aggregation);
        Assert.Equal(2, r.Samples);
        Assert.Equal(4.0, r.EffectiveAcs);
        Assert.Equal(0.0, r.EffectiveMacs);
        Assert.Equal(12.0, r.DenseSynapticOperations);
        Assert.Equal(0.5, r.ClassificationAccuracy);
        // 3 of the 6 weights are zero.
        Assert.Equal(0.5, r.ConnectionSparsity);
        Assert.Equal(2, meter.Samples);
    }

    [Fact]
    public void ReportsEqualTheFSharpModuleInBothAggregations()
    {
        var p = Net.Init(RandomKey.FromSeed(1), DType.Float64);
        var meter = new NeuroBenchMeter(Net, p, new NeuroBenchSettings { DatasetSize = 5 });
        var x2 = X * 0.5; // graded values: MACs
        var fsOptions = new NeuroBenchOptions(NeuroBenchMode.Reference, Microsoft.FSharp.Core.FSharpOption<int>.Some(5),
            Microsoft.FSharp.Core.FSharpOption<Microsoft.FSharp.Collections.FSharpList<string>>.None,
            Microsoft.FSharp.Core.FSharpOption<double>.None);
        var fsParams = GraphModule.initAs(DType.Float64, SnnFunc.Random.key(1L), FsNet);
        var batches = new List<NeuroBenchBatch>();
        foreach (var x in new[] { X, x2 })
        {
            meter.Add(Inputs(x), Net.Run(p, 2, Dt, Inputs(x)));
            var xs = Microsoft.FSharp.Collections.MapModule.OfSeq(new[] { Tuple.Create("x", x) });
            var fsRun = GraphModule.run(FsNet, fsParams, RunConfigModule.steps(2, Dt), xs);
            batches.Add(NeuroBenchModule.measureRun(fsOptions, FsNet, fsParams, xs, fsRun));
        }
        foreach (var (aggregation, mode) in new[] { (NeuroBenchAggregation.Reference, NeuroBenchMode.Reference), (NeuroBenchAggregation.Corrected, NeuroBenchMode.Corrected) })
        {
            var options = new NeuroBenchOptions(mode, fsOptions.DatasetSize, fsOptions.Activations, fsOptions.EventBin);
            var fs = NeuroBenchModule.evaluate(options, FsNet, fsParams, batches);
            var cs = meter.Report(aggregation);
            Assert.Equal(fs.Samples, cs.Samples);
            Assert.Equal(fs.Footprint, cs.Footprint);
            Assert.Equal(fs.ParameterCount, cs.ParameterCount);
            Assert.Equal(fs.ActivationSparsity, cs.ActivationSparsity);
            Assert.Equal(fs.SynapticOperations.EffectiveMACs, cs.EffectiveMacs);
            Assert.Equal(fs.SynapticOperations.EffectiveACs, cs.EffectiveAcs);
            Assert.Equal(fs.MembraneUpdates, cs.MembraneUpdates);
            Assert.Null(cs.ClassificationAccuracy);
        }
        // The graded batch makes MACs: 8 effective ops over 4 samples.
        Assert.Equal(2.0, meter.Report().EffectiveMacs);
        Assert.Contains("Corrected", meter.ToString());
    }

    [Fact]
    public void BadInputNamesWhatIsWrong()
    {
        var p = Net.Init(RandomKey.FromSeed(0), DType.Float64);
        var meter = new NeuroBenchMeter(Net, p);
        Assert.Contains("no batch", Assert.Throws<ArgumentException>(() => meter.Report()).Message);
        var run = Net.Run(p, 2, Dt, Inputs(X));
        Assert.Contains("predictions and labels", Assert.Throws<ArgumentException>(() => meter.Add(Inputs(X), run, new[] { 0, 1 })).Message);
        Assert.Contains("3 predictions", Assert.Throws<ArgumentException>(() => meter.Add(Inputs(X), run, new[] { 0, 1, 2 }, new[] { 0, 1, 2 })).Message);
        Assert.Throws<ArgumentException>(() => new NeuroBenchMeter(Net, p, new NeuroBenchSettings { DatasetSize = 0 }));
    }
}
