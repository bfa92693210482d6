using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using static SnnFunc.CSharp.Tests.TestUtil;
using FsGraph = SnnFunc.Graph;
using FsParams = Microsoft.FSharp.Collections.FSharpMap<string, Microsoft.FSharp.Collections.FSharpMap<string, SnnFunc.Tensor>>;

namespace SnnFunc.CSharp.Tests;

/// NetworkGraph, the facade of the core's Graph module: the same graphs built through the F# module
/// (called from C#) and through the fluent builder give bitwise identical parameters, runs and
/// gradients; a graph trains from C#; errors carry the core's messages.
public class GraphTests
{
    private const double Dt = 1e-3;
    private const int Steps = 25, Batch = 3;

    private static readonly LifParameters Lif = new() { Dt = Dt, VTh = 0.3 };
    private static readonly LiParameters Li = new() { Dt = Dt };

    // The same neurons as F# specs, field by field.
    private static Snn.Lif.Spec FsLif(Snn.Reset? reset = null, int refractory = 0)
    {
        var d = Snn.Lif.defaults;
        return new(d.TauSyn, d.TauMem, d.VLeak, 0.3, d.VReset, reset ?? Snn.Reset.ToValue, Dt, d.Surrogate, refractory);
    }

    private static Snn.Li.Spec FsLi() => new(Snn.Li.defaults.TauSyn, Snn.Li.defaults.TauMem, Snn.Li.defaults.VLeak, Dt);

    private static FsGraph FsBuild(params Func<FsGraph, FsGraph>[] steps) => steps.Aggregate(GraphModule.empty, (g, f) => f(g));

    /// Deterministic 0/1 spikes [T, B, features...].
    private static Tensor Spikes(DType dtype, params int[] shape)
    {
        var n = shape.Aggregate(1, (a, b) => a * b);
        var data = Enumerable.Range(0, n).Select(k => (k * 7919) % 13 < 3 ? 1.0 : 0.0).ToArray();
        return Tensor.FromArray(data, shape).Convert(dtype);
    }

    private static Dictionary<string, Tensor> Inputs(string name, Tensor x) => new() { [name] = x };

    private static FSharpMap<string, Tensor> FsInputs(string name, Tensor x) => MapModule.OfSeq([Tuple.Create(name, x)]);

    // Feed-forward ------------------------------------------------------------------------------

    private static readonly NetworkGraph FeedForward = NetworkGraph.Create()
        .Input("x", 5)
        .Population("hidden", 7, Neurons.Lif(Lif).WithInit("tauMem", Inits.Uniform(8e-3, 14e-3)))
        .Population("out", 3, Neurons.Li(Li))
        .Connect("x", "hidden", Projections.Dense(Inits.Normal(scale: 8)))
        .Connect("hidden", "out", Projections.Dense(Inits.Normal(3)).WithBias(Inits.Constant(0.1)));

    private static readonly FsGraph FsFeedForward = FsBuild(
        g => GraphModule.input("x", 5, g),
        g => GraphModule.population("hidden", 7, NeuronModule.withInit("tauMem", InitModule.uniform(8e-3, 14e-3), NeuronModule.lif(FsLif())), g),
        g => GraphModule.population("out", 3, NeuronModule.li(FsLi()), g),
        g => GraphModule.connect("x", "hidden", ProjectionModule.dense(InitModule.normalWith(8.0)), g),
        g => GraphModule.connect("hidden", "out", ProjectionModule.withBias(InitModule.constant(0.1), ProjectionModule.dense(InitModule.normalWith(3.0))), g));

    [Fact]
    public void FeedForwardParametersRunAndGradientsMatchTheGraphModule()
    {
        var p = FeedForward.Init(RandomKey.FromSeed(1), DType.Float64);
        var fp = GraphModule.initAs(DType.Float64, SnnFunc.Random.key(1L), FsFeedForward);
        SameLeaves(fp, p);
        Assert.Equal(new[] { 7 }, p["hidden"]["tauMem"].Shape);
        Assert.Equal(new[] { 5, 7 }, p["x->hidden"]["weight"].Shape);
        Assert.Equal(7, p["hidden"]["tauMem"].ToDoubleArray().Distinct().Count());

        var x = Spikes(DType.Float64, Steps, Batch, 5);
        var r = FeedForward.Run(p, Steps, Dt, Inputs("x", x));
        var fr = GraphModule.run(FsFeedForward, fp, RunConfigModule.steps(Steps, Dt), FsInputs("x", x));
        SameRun(fr, r);
        // Inference: the step loop of GraphModule.infer, the same numbers as the run.
        SameRun(fr, FeedForward.Infer(p, Steps, Dt, Inputs("x", x)));
        Assert.True(r["hidden"].Spikes!.Sum().ToScalar() > 5, "the hidden layer spikes");
        Assert.Null(r["out"].Spikes);
        Assert.Equal(new[] { Steps, Batch, 3 }, r["out"].Membrane!.Shape);
        Identical(r["out"].Membrane!, r["out"].Output!);

        Tensor Loss(GraphRunResult run) =>
            Decoders.MaxOverTime(run["out"].Membrane!).Square().Sum() + run["hidden"].Spikes!.Mean() * 0.1;
        var vg = Autodiff.ValueAndGrad((GraphParameters q) => Loss(FeedForward.Run(q, Steps, Dt, Inputs("x", x))), p);
        var fg = Ad.grad(FuncConvert.FromFunc((FsParams q) =>
        {
            var run = GraphModule.run(FsFeedForward, q, RunConfigModule.steps(Steps, Dt), FsInputs("x", x));
            return Decoders.MaxOverTime(run.Item("out").Membrane).Square().Sum() + run.Item("hidden").Spikes.Mean() * 0.1;
        }), fp);
        Assert.IsType<GraphParameters>(vg.Gradient);
        SameLeaves(fg, vg.Gradient);
        Assert.True(vg.Gradient["hidden"]["tauMem"].Abs().Max().ToScalar() > 0, "the gradient reaches tauMem");
        Assert.True(vg.Gradient["x->hidden"]["weight"].Abs().Max().ToScalar() > 0);
    }

    // Recurrent, delayed, every projection option --------------------------------------------------

    private static readonly NetworkGraph Recurrent = NetworkGraph.Create()
        .Input("x", 5)
        .Population("a", 6, Neurons.Alif(new AlifParameters { Lif = Lif with { RefractorySteps = 1 } }).WithInit("vTh", Inits.Uniform(0.25, 0.35)))
        .Population("b", 4, Neurons.Lif(Lif with { Reset = ResetMode.BySubtraction }))
        .Population("out", 3, Neurons.Li(Li))
        .Connect("x", "a", Projections.Dense(Inits.Normal(8)).DelayedPerInput([0, 1, 2, 0, 3]))
        .Connect("a", "a", Projections.Dense(Inits.Normal(2)).Excitatory(), name: "recurrent")
        .Connect("a", "b", Projections.Dense(Inits.Normal(6)).Delayed(2))
        .Connect("b", "a", Projections.Dense(Inits.Normal(3)).Inhibitory())
        .Connect("b", "out", Projections.Dense(Inits.Normal(2)).LearnableDelay(1.5, 4, perInput: true).WithBias(Inits.Zeros));

    private static FsGraph FsRecurrent()
    {
        var d = Snn.Alif.defaults;
        var alif = new Snn.Alif.Spec(FsLif(refractory: 1), d.TauAdapt, d.Beta);
        Projection Dense(double scale) => ProjectionModule.dense(InitModule.normalWith(scale));
        return FsBuild(
            g => GraphModule.input("x", 5, g),
            g => GraphModule.population("a", 6, NeuronModule.withInit("vTh", InitModule.uniform(0.25, 0.35), NeuronModule.alif(alif)), g),
            g => GraphModule.population("b", 4, NeuronModule.lif(FsLif(Snn.Reset.BySubtraction)), g),
            g => GraphModule.population("out", 3, NeuronModule.li(FsLi()), g),
            g => GraphModule.connect("x", "a", ProjectionModule.delayedPerInput([0, 1, 2, 0, 3], Dense(8)), g),
            g => GraphModule.connectNamed("recurrent", "a", "a", ProjectionModule.excitatory(Dense(2)), g),
            g => GraphModule.connect("a", "b", ProjectionModule.delayed(2, Dense(6)), g),
            g => GraphModule.connect("b", "a", ProjectionModule.inhibitory(Dense(3)), g),
            g => GraphModule.connect("b", "out", ProjectionModule.withBias(InitModule.zeros, ProjectionModule.learnableDelay(1.5, 4, true, Dense(2))), g));
    }

    [Fact]
    public void RecurrentRunAndGradientsMatchTheGraphModule()
    {
        var fsGraph = FsRecurrent();
        var p = Recurrent.Init(RandomKey.FromSeed(2));              // Float32, the default
        var fp = GraphModule.init(SnnFunc.Random.key(2L), fsGraph);
        SameLeaves(fp, p);
        Assert.Equal(DType.Float32, p["recurrent"]["weight"].DType);
        Assert.Equal(new[] { 4 }, p["b->out"]["delay"].Shape);
        Assert.Equal(new[] { 6 }, p["a"]["vTh"].Shape);

        var x = Spikes(DType.Float32, Steps, Batch, 5);
        var record = new[] { "a", "b", "out", "a->b" };
        var r = Recurrent.Run(p, Steps, Dt, Inputs("x", x), record);
        var fr = GraphModule.run(fsGraph, fp, RunConfigModule.recording(ListModule.OfSeq(record), RunConfigModule.steps(Steps, Dt)), FsInputs("x", x));
        SameRun(fr, r);
        Assert.True(r["b"].Spikes!.Sum().ToScalar() > 0, "b spikes, so the inhibition acts");
        Assert.Null(r["a->b"].Membrane);
        Assert.NotNull(r["a->b"].Current);

        Tensor Loss(NodeObservables o, NodeObservables a, NodeObservables b) =>
            Decoders.MaxOverTime(o.Membrane!).Square().Sum() + a.Spikes!.Mean() * 0.1 + b.Spikes!.Mean() * 0.1;
        var vg = Autodiff.ValueAndGrad((GraphParameters q) =>
        {
            var run = Recurrent.Run(q, Steps, Dt, Inputs("x", x));
            return Loss(run["out"], run["a"], run["b"]);
        }, p);
        var fg = Ad.grad(FuncConvert.FromFunc((FsParams q) =>
        {
            var run = GraphModule.run(fsGraph, q, RunConfigModule.steps(Steps, Dt), FsInputs("x", x));
            var o = run.Item("out"); var a = run.Item("a"); var b = run.Item("b");
            return Loss(new(o.Output, o.Spikes, o.Membrane, o.Current), new(a.Output, a.Spikes, a.Membrane, a.Current), new(b.Output, b.Spikes, b.Membrane, b.Current));
        }), fp);
        SameLeaves(fg, vg.Gradient);
        Assert.True(vg.Gradient["b->out"]["delay"].Abs().Max().ToScalar() > 0, "the learnable delay has a gradient");
        Assert.True(vg.Gradient["recurrent"]["weight"].Abs().Max().ToScalar() > 0);
    }

    [Fact]
    public void ARunContinuedFromItsFinalStateEqualsOneLongRun()
    {
        var p = Recurrent.Init(RandomKey.FromSeed(3), DType.Float64);
        var x = Spikes(DType.Float64, Steps, Batch, 5);
        var whole = Recurrent.Run(p, Steps, Dt, Inputs("x", x));
        var first = Recurrent.Run(p, 11, Dt, Inputs("x", x.Narrow(0, 0, 11)));
        var second = Recurrent.Run(p, Steps - 11, Dt, Inputs("x", x.Narrow(0, 11, Steps - 11)), initial: first.Final);
        foreach (var n in new[] { "a", "b", "out" })
            Identical(whole[n].Membrane!, Tensor.Concat([first[n].Membrane!, second[n].Membrane!], 0));
        Identical(whole.Final["a"]["v"], second.Final["a"]["v"]);
        // The state's key paths are the core's, and a state built by hand is accepted.
        Assert.Contains("a/v", Pytree.LeavesWithPath(whole.Final).Select(l => l.Path));
        var rebuilt = GraphState.FromDictionary(first.Final.ToDictionary(kv => kv.Key, kv => kv.Value));
        Identical(second["out"].Membrane!, Recurrent.Run(p, Steps - 11, Dt, Inputs("x", x.Narrow(0, 11, Steps - 11)), initial: rebuilt)["out"].Membrane!);
    }

    // The other neuron models, shaped nodes, sparse and shared projections -------------------------

    [Fact]
    public void AdExIfSparseShapedAndSharedProjectionsMatchTheGraphModule()
    {
        var mask = Tensor.FromArray(Enumerable.Range(0, 24).Select(k => k % 3 == 0 ? 0.0 : 1.0).ToArray(), 6, 4);
        var adex = new AdExParameters { Dt = Dt };
        var g = NetworkGraph.Create()
            .Input("img", [2, 3])
            .Population("adex", [2, 2], Neurons.AdEx(adex).WithInit("b", Inits.Uniform(0.0, 0.1)))
            .Population("if", 4, Neurons.IntegrateAndFire(new IfParameters { VTh = 0.5 }))
            .Population("lif", 4, Neurons.Lif(Lif))
            .Connect("img", "adex", Projections.Dense(Inits.Normal(4)))
            .Projection("shared", Projections.Sparse(mask, Inits.Normal(4)))
            .Edge("img", "shared").Edge("shared", "if").Edge("shared", "lif")
            .Validate();
        Assert.Equal(new[] { 4 }, g.ShapeOf("shared"));
        Assert.Equal(new[] { 2, 2 }, g.ShapeOf("adex"));
        Assert.Equal(
            [new GraphNode("img", GraphNodeKind.Input), new GraphNode("adex", GraphNodeKind.Population), new GraphNode("if", GraphNodeKind.Population),
             new GraphNode("lif", GraphNodeKind.Population), new GraphNode("img->adex", GraphNodeKind.Projection), new GraphNode("shared", GraphNodeKind.Projection)],
            g.Nodes);
        Assert.Contains(new GraphEdge("shared", "lif"), g.Edges);
        Assert.Equal(["tauSyn", "tauMem", "tauAdapt", "vLeak", "vT", "deltaT", "vTh", "vReset", "a", "b", "tRef"], Neurons.AdEx().ParameterNames);
        Assert.False(Neurons.Li().IsSpiking);

        var d = Snn.AdEx.defaults;
        var ad = new Snn.AdEx.Spec(d.TauSyn, d.TauMem, d.TauAdapt, d.VLeak, d.VT, d.DeltaT, d.VTh, d.VReset, d.A, d.B, d.TRef, Dt, d.Surrogate);
        var i0 = Snn.IF.defaults;
        var fsGraph = FsBuild(
            f => GraphModule.inputShaped("img", [2, 3], f),
            f => GraphModule.populationShaped("adex", [2, 2], NeuronModule.withInit("b", InitModule.uniform(0.0, 0.1), NeuronModule.adex(ad)), f),
            f => GraphModule.population("if", 4, NeuronModule.integrateAndFire(new Snn.IF.Spec(0.5, i0.VReset, i0.Reset, i0.Surrogate, i0.RefractorySteps)), f),
            f => GraphModule.population("lif", 4, NeuronModule.lif(FsLif()), f),
            f => GraphModule.connect("img", "adex", ProjectionModule.dense(InitModule.normalWith(4.0)), f),
            f => GraphModule.addNode("shared", Node.NewSynapses(ProjectionModule.sparse(mask, InitModule.normalWith(4.0))), f),
            f => GraphModule.edge("img", "shared", f),
            f => GraphModule.edge("shared", "if", f),
            f => GraphModule.edge("shared", "lif", f));
        var p = g.Init(RandomKey.FromSeed(4), DType.Float64);
        var fp = GraphModule.initAs(DType.Float64, SnnFunc.Random.key(4L), fsGraph);
        SameLeaves(fp, p);
        var x = Spikes(DType.Float64, Steps, Batch, 2, 3) * 3.0;
        var r = g.Run(p, Steps, Dt, Inputs("img", x));
        SameRun(GraphModule.run(fsGraph, fp, RunConfigModule.steps(Steps, Dt), FsInputs("img", x)), r);
        Assert.Equal(new[] { Steps, Batch, 2, 2 }, r["adex"].Membrane!.Shape);
        Assert.True(r["if"].Spikes!.Sum().ToScalar() > 0, "the IF neurons spike");
    }

    // Training from C# ----------------------------------------------------------------------------

    [Fact]
    public void ASmallGraphWithPerNeuronTimeConstantsTrainsWithAdam()
    {
        var g = NetworkGraph.Create()
            .Input("x", 8)
            .Population("hidden", 16, Neurons.Lif(new LifParameters { Dt = Dt }).WithInit("tauMem", Inits.Uniform(5e-3, 20e-3)))
            .Population("out", 3, Neurons.Li(Li))
            .Connect("x", "hidden", Projections.Dense(Inits.Normal(6)))
            .Connect("hidden", "out", Projections.Dense(Inits.Normal(2)));
        var p0 = g.Init(RandomKey.FromSeed(5));
        var p = p0;
        var taus0 = p["hidden"]["tauMem"].ToDoubleArray();
        Assert.Equal(16, taus0.Distinct().Count());
        Assert.All(taus0, t => Assert.InRange(t, 5e-3, 20e-3));

        var x = RandomKey.FromSeed(6).Bernoulli(0.1, [30, 24, 8]);
        var labels = Enumerable.Range(0, 24).Select(i => i % 3).ToArray();
        Tensor Loss(GraphParameters q) =>
            Losses.CrossEntropy(Decoders.MaxOverTime(g.Run(q, 30, Dt, Inputs("x", x))["out"].Membrane!), labels);

        // Selected by key path: the weights learn fast, the per-neuron membrane time constants at a
        // rate of their own, the homogeneous neuron parameters (tauSyn, vTh ...) not at all.
        var optimizer = Optimizers.MultiTransform(
            path => path.EndsWith("/weight") ? "weights" : path == "hidden/tauMem" ? "tau" : "frozen",
            new Dictionary<string, Optimizer>
            {
                ["weights"] = Optimizers.Adam(0.02),
                ["tau"] = Optimizers.Adam(2e-4),
                ["frozen"] = Optimizers.SetToZero(),
            });
        var state = optimizer.Init(p);
        var losses = new List<double>();
        for (int step = 0; step < 10; step++)
        {
            var vg = Autodiff.ValueAndGrad<GraphParameters>(Loss, p);
            losses.Add(vg.Value.ToScalar());
            (p, state) = optimizer.Step(p, vg.Gradient, state);
        }
        losses.Add(Loss(p).ToScalar());
        Assert.True(losses[^1] < 0.9 * losses[0], $"the loss falls: {string.Join(", ", losses.Select(l => l.ToString("F4")))}");
        var taus = p["hidden"]["tauMem"].ToDoubleArray();
        var moved = taus.Zip(taus0, (a, b) => Math.Abs(a - b)).Max();
        Assert.InRange(moved, 1e-5, 10 * 2e-4 * 1.01);   // learned, at most lr per Adam step
        Assert.Equal(p0["hidden"]["vTh"].ToDoubleArray(), p["hidden"]["vTh"].ToDoubleArray());   // frozen
    }

    // Pytree, parameters by hand --------------------------------------------------------------------

    [Fact]
    public void ParametersAreAPytreeWithTheCoresKeyPaths()
    {
        var p = FeedForward.Init(RandomKey.FromSeed(7));
        var fp = GraphModule.init(SnnFunc.Random.key(7L), FsFeedForward);
        var paths = Pytree.LeavesWithPath(p).Select(l => l.Path).ToArray();
        Assert.Equal(Pytree.LeavesWithPath(fp).Select(l => l.Path), paths);
        Assert.Contains("hidden/tauMem", paths);
        Assert.Contains("x-%3Ehidden/weight", paths);          // '>' escaped, as in the core
        Assert.Equal(p.Leaves.Count, paths.Length);
        Assert.Equal(["hidden", "hidden->out", "out", "x->hidden"], p.Keys);
        // A node's tensors are a pytree too, and mapping keeps the type.
        Assert.Equal(5, Pytree.Leaves(p["hidden"]).Count);
        var doubled = Pytree.Map(p, t => t * 2.0);
        Assert.IsType<GraphParameters>(doubled);
        Identical(p["x->hidden"]["weight"] * 2.0, doubled["x->hidden"]["weight"]);
        // Built by hand and changed: the same numbers as the core's Map.add.
        var w = p["x->hidden"]["weight"] * 0.5;
        var changed = p.With("x->hidden", "weight", w);
        Identical(w, changed["x->hidden"]["weight"]);
        Identical(p["x->hidden"]["weight"], p["x->hidden"]["weight"]);   // p unchanged
        var x = Spikes(DType.Float32, Steps, Batch, 5);
        var fChanged = fp.Add("x->hidden", fp["x->hidden"].Add("weight", w));
        SameRun(GraphModule.run(FsFeedForward, fChanged, RunConfigModule.steps(Steps, Dt), FsInputs("x", x)), FeedForward.Run(changed, Steps, Dt, Inputs("x", x)));
        var copy = GraphParameters.FromDictionary(changed.ToDictionary(kv => kv.Key, kv => (IReadOnlyDictionary<string, Tensor>)kv.Value.ToDictionary(e => e.Key, e => e.Value)));
        SameLeaves(changed, copy);
        Assert.True(p.TryGetValue("out", out var outParams) && outParams.ContainsKey("tauSyn"));
        Assert.False(p.ContainsKey("x"));
        Assert.Contains("tauMem: [7]", p.ToString());
        Assert.Contains("x->hidden: dense(normal(8))", FeedForward.ToString());
    }

    // Errors ------------------------------------------------------------------------------------------

    private static string MessageOf(Action a) => Assert.ThrowsAny<ArgumentException>(a).Message;

    [Fact]
    public void ErrorsCarryTheCoresMessages()
    {
        var cs = NetworkGraph.Create().Input("x", 5).Population("h", 4, Neurons.Lif(Lif));
        var fs = FsBuild(g => GraphModule.input("x", 5, g), g => GraphModule.population("h", 4, NeuronModule.lif(FsLif()), g));

        // A missing node.
        var missing = MessageOf(() => cs.Connect("x", "nowhere", Projections.Dense()));
        Assert.Equal(MessageOf(() => GraphModule.connect("x", "nowhere", ProjectionModule.dense(InitModule.normal), fs)), missing);
        Assert.Contains("Graph.edge", missing);
        Assert.Contains("'nowhere'", missing);

        // A shape mismatch.
        var shape = MessageOf(() => cs.Edge("x", "h").Validate());
        Assert.Equal(MessageOf(() => GraphModule.validate(GraphModule.edge("x", "h", fs))), shape);
        Assert.Contains("population 'h' of shape [4] receives 'x' of shape [5]", shape);

        // A name used twice, a model without the parameter, an unknown node's shape.
        Assert.Equal(
            MessageOf(() => GraphModule.population("h", 3, NeuronModule.lif(FsLif()), fs)),
            MessageOf(() => cs.Population("h", 3, Neurons.Lif(Lif))));
        var noParam = MessageOf(() => Neurons.Lif(Lif).WithInit("tau", Inits.Zeros));
        Assert.Contains("Neuron.withInit", noParam);
        Assert.Contains("tauMem", noParam);
        Assert.Contains("'nowhere'", MessageOf(() => cs.ShapeOf("nowhere")));

        // Running: a wrong input shape, a missing input, a node that was not recorded.
        var g = cs.Connect("x", "h", Projections.Dense());
        var fg = GraphModule.connect("x", "h", ProjectionModule.dense(InitModule.normal), fs);
        var p = g.Init(RandomKey.FromSeed(0));
        var fp = GraphModule.init(SnnFunc.Random.key(0L), fg);
        var bad = Tensor.Zeros(4, 2, 3);
        var wrongShape = MessageOf(() => g.Run(p, 4, Dt, Inputs("x", bad)));
        Assert.Equal(MessageOf(() => GraphModule.run(fg, fp, RunConfigModule.steps(4, Dt), FsInputs("x", bad))), wrongShape);
        Assert.Contains("[4 steps; batch...; 5]", wrongShape);
        Assert.Contains("no input is given for the source 'x'", MessageOf(() => g.Run(p, 4, Dt, new Dictionary<string, Tensor>())));
        var r = g.Run(p, 4, Dt, Inputs("x", Tensor.Zeros(4, 5)), record: ["x"]);
        Assert.Contains("not recorded", MessageOf(() => _ = r["h"]));
        Assert.Contains("Record names 'nowhere'", MessageOf(() => g.Run(p, 4, Dt, Inputs("x", Tensor.Zeros(4, 5)), record: ["nowhere"])));

        // Drawn neuron parameters out of range name the population and the neuron.
        var tau = MessageOf(() => NetworkGraph.Create().Population("h", 3, Neurons.Lif(Lif).WithInit("tauMem", Inits.Uniform(-1e-3, 0.5e-3))).Init(RandomKey.FromSeed(0)));
        Assert.Contains("population 'h'", tau);
        Assert.Contains("TauMem of neuron", tau);

        // Lookups in parameters name what there is.
        var lookup = Assert.Throws<KeyNotFoundException>(() => p["nope"]).Message;
        Assert.Contains("'nope'", lookup);
        Assert.Contains("x->h", lookup);
        var entry = Assert.Throws<KeyNotFoundException>(() => p["h"]["tau"]).Message;
        Assert.Contains("'h' has no 'tau'", entry);
        Assert.Contains("tauMem", entry);
    }
}
