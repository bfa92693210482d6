using Microsoft.FSharp.Collections;
using static SnnFunc.CSharp.Tests.TestUtil;
using FsGraph = SnnFunc.Graph;

namespace SnnFunc.CSharp.Tests;

/// Convolutional graphs through the facade: Projections.Conv2d/Conv1d and the pool transforms
/// build the same graphs as the core's Projection.conv2dWith/conv1dWith and SumPool2d/AvgPool2d
/// (bitwise the same parameters and runs), and bad options are errors naming the option.
public class ConvGraphTests
{
    private const double Dt = 1e-3;

    private static FsGraph FsBuild(params Func<FsGraph, FsGraph>[] steps) => steps.Aggregate(GraphModule.empty, (g, f) => f(g));

    private static Snn.Lif.Spec FsLif()
    {
        var d = Snn.Lif.defaults;
        return new(d.TauSyn, d.TauMem, d.VLeak, 0.3, d.VReset, d.Reset, Dt, d.Surrogate, 0);
    }

    [Fact]
    public void ConvPoolGraphsMatchTheCore()
    {
        var lif = new LifParameters { Dt = Dt, VTh = 0.3 };
        var g = NetworkGraph.Create()
            .Input("x", [2, 6, 6])
            .Population("h", [4, 3, 3], Neurons.Lif(lif))
            .Connect("x", "h", Projections.Conv2d(4, 3, 3, Inits.Normal(3), new ConvolutionOptions { Stride = [2, 2], Padding = [1, 1] }).WithBias(Inits.Constant(0.1)))
            .Transform("pool", GraphTransforms.AvgPool2d(2, 2, strideHeight: 1, strideWidth: 1))
            .Edge("h", "pool")
            .Transform("sum", GraphTransforms.SumPool2d(2, 2))
            .Edge("pool", "sum")
            .Output("output", "sum")
            .Validate();
        Assert.Equal(new[] { 4, 2, 2 }, g.ShapeOf("pool"));
        Assert.Equal(new[] { 4, 1, 1 }, g.ShapeOf("sum"));
        Assert.Equal(3, g.Nodes.Count(n => n.Kind == GraphNodeKind.Transform));

        var options = new Conv2dOptions(Tuple.Create(2, 2), Tuple.Create(1, 1), Tuple.Create(1, 1), 1);
        var fs = FsBuild(
            f => GraphModule.inputShaped("x", [2, 6, 6], f),
            f => GraphModule.populationShaped("h", [4, 3, 3], NeuronModule.lif(FsLif()), f),
            f => GraphModule.connect("x", "h", ProjectionModule.withBias(InitModule.constant(0.1), ProjectionModule.conv2dWith(options, 4, 3, 3, InitModule.normalWith(3.0))), f),
            f => GraphModule.transform("pool", Transform.NewAvgPool2d(new Pool2dOptions(Tuple.Create(2, 2), Tuple.Create(1, 1), Tuple.Create(0, 0))), f),
            f => GraphModule.edge("h", "pool", f),
            f => GraphModule.transform("sum", Transform.NewSumPool2d(Pool2dOptions.Of(2, 2)), f),
            f => GraphModule.edge("pool", "sum", f),
            f => GraphModule.transform("output", Transform.Identity, f),
            f => GraphModule.edge("sum", "output", f));

        var p = g.Init(RandomKey.FromSeed(1), DType.Float64);
        var fp = GraphModule.initAs(DType.Float64, SnnFunc.Random.key(1L), fs);
        SameLeaves(fp, p);
        Assert.Equal(new[] { 4, 2, 3, 3 }, p["x->h"]["weight"].Shape);

        var x = Tensor.FromArray(Enumerable.Range(0, 10 * 2 * 72).Select(k => (k * 7919) % 11 < 4 ? 1.0 : 0.0).ToArray(), 10, 2, 2, 6, 6);
        var r = g.Run(p, 10, Dt, new Dictionary<string, Tensor> { ["x"] = x });
        var fr = GraphModule.run(fs, fp, RunConfigModule.steps(10, Dt), MapModule.OfSeq([Tuple.Create("x", x)]));
        SameRun(fr, r);
        Assert.True(r["h"].Spikes!.Sum().ToScalar() > 0, "the conv population spikes");
        Assert.Equal(new[] { 10, 2, 4, 1, 1 }, r["output"].Output!.Shape);
    }

    [Fact]
    public void Conv1dWithSamePaddingKeepsTheLength()
    {
        var g = NetworkGraph.Create()
            .Input("x", [2, 9])
            .Population("h", [3, 9], Neurons.Lif(new LifParameters { Dt = Dt }))
            .Connect("x", "h", Projections.Conv1d(3, 5, options: new ConvolutionOptions { SamePadding = true, Dilation = [2] }))
            .Validate();
        Assert.Equal(new[] { 3, 9 }, g.ShapeOf("x->h"));
        Assert.Equal(new[] { 3, 2, 5 }, g.Init(RandomKey.FromSeed(0))["x->h"]["weight"].Shape);
    }

    [Fact]
    public void BadConvolutionOptionsNameTheOption()
    {
        var e = Assert.Throws<ArgumentException>(() => Projections.Conv2d(4, 3, 3, options: new ConvolutionOptions { Stride = [2] }));
        Assert.Contains("Stride needs 2 entries", e.Message);
        e = Assert.Throws<ArgumentException>(() => Projections.Conv2d(4, 3, 3, options: new ConvolutionOptions { SamePadding = true, Padding = [1, 1] }));
        Assert.Contains("not both", e.Message);
        e = Assert.Throws<ArgumentException>(() => Projections.Conv2d(3, 3, 3, options: new ConvolutionOptions { Groups = 2 }));
        Assert.Contains("multiple of Groups", e.Message);
        e = Assert.Throws<ArgumentException>(() => NetworkGraph.Create()
            .Input("x", [2, 2, 2])
            .Transform("p", GraphTransforms.SumPool2d(3, 3))
            .Edge("x", "p")
            .Validate());
        Assert.Contains("pool 'p'", e.Message);
    }
}
