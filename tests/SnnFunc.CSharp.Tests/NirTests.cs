using System.Text;
using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using static SnnFunc.CSharp.Tests.TestUtil;
using FsGraph = SnnFunc.Graph;
using FsParams = Microsoft.FSharp.Collections.FSharpMap<string, Microsoft.FSharp.Collections.FSharpMap<string, SnnFunc.Tensor>>;

namespace SnnFunc.CSharp.Tests;

/// NirFiles, NirConventions, NirNetwork and transform nodes, the facade of the core's Nir module and
/// Graph.transform: the reference files read through the facade run bitwise as the core reads and
/// runs them; a C# graph written and read back runs as before (the NIR primitives against SnnFunc's
/// own neurons, a computation of its own); the conventions, warnings and errors are the core's.
public class NirTests
{
    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "nir", name);

    private static string TempNir() => Path.Combine(Path.GetTempPath(), "snnfunc-csnir-" + Guid.NewGuid().ToString("N") + ".nir");

    private static FsGraph FsBuild(params Func<FsGraph, FsGraph>[] steps) => steps.Aggregate(GraphModule.empty, (g, f) => f(g));

    /// Deterministic non-negative drive [T, B, features...] (dense enough to make NIR neurons spike).
    private static Tensor Drive(DType dtype, double scale, params int[] shape)
    {
        var n = shape.Aggregate(1, (a, b) => a * b);
        var data = Enumerable.Range(0, n).Select(k => (k * 7919 % 13) / 13.0 * scale).ToArray();
        return Tensor.FromArray(data, shape).Convert(dtype);
    }

    /// Deterministic 0/1 spikes [T, B, features...].
    private static Tensor Spikes(DType dtype, params int[] shape)
    {
        var n = shape.Aggregate(1, (a, b) => a * b);
        return Tensor.FromArray(Enumerable.Range(0, n).Select(k => (k * 7919) % 11 < 3 ? 1.0 : 0.0).ToArray(), shape).Convert(dtype);
    }

    private static string MessageOf<TException>(Action a) where TException : Exception => Assert.ThrowsAny<TException>(a).Message;

    // (a) The reference files -------------------------------------------------------------------

    /// The files tests/SnnFunc.Tests/NirGraphTests.fs reads as mappable (its `mappable` list).
    public static TheoryData<string> MappableFiles => new()
    {
        "conv1d_li.nir",
        "conv2d_pool.nir",
        "legacy/cnn_sinabs.nir",
        "ff_cubalif.nir",
        "ff_cubalif_v107.nir",
        "mixed_nodes.nir",
        "recurrent_cubalif.nir",
        "recurrent_subgraph.nir",
        "legacy/braille_noDelay_bias_zero.nir",
        "legacy/lif_norse.nir",
        "legacy/lif_rockpool.nir",
    };

    [Theory, MemberData(nameof(MappableFiles))]
    public void AReferenceFileReadsAndRunsBitwiseAsTheCoresNirRead(string file)
    {
        var net = NirFiles.Read(Fixture(file));
        var fs = Nir.read(Fixture(file));
        var (fg, fp) = (fs.Item1, fs.Item2);

        // The same graph and parameters.
        Assert.Equal(fg.Nodes.Select(n => n.Item1), net.Graph.Nodes.Select(n => n.Name));
        Assert.Equal(fg.Edges.Select(e => new GraphEdge(e.Item1, e.Item2)), net.Graph.Edges);
        SameLeaves(fp, net.Parameters);
        // None of these files records conventions: milliseconds and 1 ms steps.
        Assert.Equal(1e-3, net.Conventions.TimeUnit);
        Assert.Equal(1e-3, net.Conventions.Dt);
        Assert.Equal(Nir.warnings(fg), net.Warnings);

        // Inputs and outputs, against the document itself: its top-level Input nodes, and the
        // nodes without an outgoing edge are its Output nodes (top level or in a nested graph).
        var doc = NirFile.read(Fixture(file));
        var topInputs = doc.Graph.Nodes.Where(kv => kv.Value.IsInput).Select(kv => kv.Key).ToArray();
        Assert.NotEmpty(topInputs);
        Assert.Equal(topInputs.Order(StringComparer.Ordinal), net.Inputs.Order(StringComparer.Ordinal));
        Assert.NotEmpty(net.Outputs);
        var kinds = net.Graph.Nodes.ToDictionary(n => n.Name, n => n.Kind);
        Assert.All(net.Outputs, o => Assert.Equal(GraphNodeKind.Transform, kinds[o]));
        Assert.Contains(net.Outputs, o => o.EndsWith("output", StringComparison.Ordinal));

        // The same run, every node recorded.
        const int steps = 60;
        var dtype = net.Parameters.Leaves[0].DType;
        // Drive strong enough that every file's output moves (mixed_nodes' threshold needs it).
        var inputs = net.Inputs.ToDictionary(s => s, s => Drive(dtype, 50.0, [steps, 2, .. net.Graph.ShapeOf(s)]));
        var all = net.Graph.Nodes.Select(n => n.Name).ToArray();
        var r = net.Graph.Run(net.Parameters, steps, net.Conventions.Dt, inputs, record: all);
        var fr = GraphModule.run(fg, fp,
            RunConfigModule.recording(ListModule.OfSeq(all), RunConfigModule.steps(steps, 1e-3)),
            MapModule.OfSeq(inputs.Select(kv => Tuple.Create(kv.Key, kv.Value))));
        SameRun(fr, r);
        foreach (var o in net.Outputs)
            Assert.True(r[o].Output!.ToDoubleArray().All(double.IsFinite), $"{file}: {o} is finite");
        Assert.True(net.Outputs.Any(o => r[o].Output!.Abs().Max().ToScalar() > 0), $"{file}: an output moves");
    }

    [Fact]
    public void ANirNetworkNamesItsPartsAsTheFileDoes()
    {
        var net = NirFiles.Read(Fixture("ff_cubalif.nir"));
        Assert.Equal(["input"], net.Inputs);
        Assert.Equal(["output"], net.Outputs);
        Assert.Empty(net.Warnings);
        Assert.Equal(GraphNodeKind.Transform, net.Graph.Nodes.Single(n => n.Name == "output").Kind);
        Assert.Equal(GraphNodeKind.Projection, net.Graph.Nodes.Single(n => n.Name == "fc1").Kind);
        Assert.Equal(GraphNodeKind.Population, net.Graph.Nodes.Single(n => n.Name == "lif1").Kind);
        Assert.Equal(GraphNodeKind.Input, net.Graph.Nodes.Single(n => n.Name == "input").Kind);
        Assert.Contains("tau_mem", net.Parameters["lif1"].Keys);
        var text = net.Graph.ToString();
        Assert.Contains("lif1: nir CubaLIF[", text);
        Assert.Contains("li_out: nir CubaLI[", text);
        Assert.Contains("output: identity[", text);
        Assert.Contains("superSpike(100)", net.Conventions.ToString());
    }

    // (b) A C# graph through a file ----------------------------------------------------------------

    private const double Dt = 0.5e-3;

    private static NetworkGraph OwnGraph() => NetworkGraph.Create()
        .Input("x", 5)
        .Population("hidden", 8, Neurons.Lif(new LifParameters { Dt = Dt, VTh = 0.4 }).WithInit("tauMem", Inits.Uniform(8e-3, 15e-3)))
        .Population("out", 3, Neurons.Li(new LiParameters { Dt = Dt }))
        .Connect("x", "hidden", Projections.Dense(Inits.Normal(8)).WithBias(Inits.Constant(0.1)))
        .Connect("hidden", "out", Projections.Dense(Inits.Normal(3)))
        .Output("output", "out");

    private static readonly string[] OwnRecord = ["hidden", "out", "output"];

    /// The file's runs against the graph's own: spikes equal, the readout to 1e-9.
    private static void SameDynamics(GraphRunResult before, GraphRunResult after)
    {
        Assert.Equal(before["hidden"].Spikes!.ToDoubleArray(), after["hidden"].Spikes!.ToDoubleArray());
        Assert.True(before["hidden"].Spikes!.Sum().ToScalar() > 10, "the hidden population spikes");
        Close(before["out"].Membrane!, after["out"].Membrane!, 1e-9);
        Close(before["output"].Output!, after["output"].Output!, 1e-9);
        Identical(after["out"].Membrane!, after["output"].Output!);
        Assert.True(before["output"].Output!.Abs().Max().ToScalar() > 1e-3, "the readout moves");
    }

    [Fact]
    public void AGraphBuiltInCSharpWrittenAndReadBackRunsAsBefore()
    {
        var g = OwnGraph();
        Assert.Equal(GraphNodeKind.Transform, g.Nodes[^1].Kind);
        Assert.Equal(new GraphEdge("out", "output"), g.Edges[^1]);
        var p = g.Init(RandomKey.FromSeed(9), DType.Float64);
        var x = Spikes(DType.Float64, 40, 2, 5);
        var before = g.Run(p, 40, Dt, new Dictionary<string, Tensor> { ["x"] = x }, record: OwnRecord);
        var path = TempNir();
        try
        {
            NirFiles.Write(path, g, p);
            // What the file holds, read by the core's file layer: NIR's primitives for SnnFunc's neurons.
            var doc = NirFile.read(path);
            Assert.True(doc.Graph.Nodes["hidden"].IsCubaLIF);
            Assert.True(doc.Graph.Nodes["out"].IsCubaLI);
            Assert.True(doc.Graph.Nodes["output"].IsOutput);
            Assert.True(doc.Graph.Nodes["x"].IsInput);

            var net = NirFiles.Read(path);
            Assert.Equal(["x"], net.Inputs);
            Assert.Equal(["output"], net.Outputs);
            Assert.Empty(net.Warnings);
            Assert.Equal(DType.Float64, net.Parameters["hidden"]["tau_mem"].DType);
            var after = net.Graph.Run(net.Parameters, 40, net.Conventions.Dt, new Dictionary<string, Tensor> { ["x"] = x }, record: OwnRecord);
            SameDynamics(before, after);

            // And the read graph writes back as the same document.
            var again = TempNir();
            try
            {
                NirFiles.Write(again, net.Graph, net.Parameters);
                var doc2 = NirFile.read(again);
                Assert.Equal(doc.Graph.Nodes.Keys, doc2.Graph.Nodes.Keys);
                Assert.Equal(doc.Graph.Edges, doc2.Graph.Edges);
                Assert.Equal(doc.Graph.Metadata, doc2.Graph.Metadata);
                var tauMem = doc.Graph.Nodes["hidden"] as NirNode.CubaLIF;
                var tauMem2 = doc2.Graph.Nodes["hidden"] as NirNode.CubaLIF;
                Identical(tauMem!.Item.TauMem, tauMem2!.Item.TauMem);
            }
            finally { File.Delete(again); }
        }
        finally { File.Delete(path); }
    }

    // (c) Conventions -----------------------------------------------------------------------------------

    public static TheoryData<string> ConventionNames => new() { "milliseconds", "seconds", "steps", "none" };

    private static NirConventions? ConventionsNamed(string name) => name switch
    {
        "milliseconds" => NirConventions.Milliseconds(Dt),
        "seconds" => NirConventions.Seconds(Dt),
        "steps" => NirConventions.Steps(Dt),
        _ => null,
    };

    [Theory, MemberData(nameof(ConventionNames))]
    public void TheConventionsWrittenAreRecordedAndReadBack(string name)
    {
        var conventions = ConventionsNamed(name);
        var timeUnit = name switch { "seconds" => 1.0, "steps" => Dt, _ => 1e-3 };   // none: milliseconds
        if (conventions is not null)
        {
            Assert.Equal(timeUnit, conventions.TimeUnit);
            Assert.Equal(Dt, conventions.Dt);
        }
        var g = OwnGraph();
        var p = g.Init(RandomKey.FromSeed(10), DType.Float64);
        var x = Spikes(DType.Float64, 40, 2, 5);
        var before = g.Run(p, 40, Dt, new Dictionary<string, Tensor> { ["x"] = x }, record: OwnRecord);
        var path = TempNir();
        try
        {
            NirFiles.Write(path, g, p, conventions);
            var meta = NirFile.read(path).Graph.Metadata;
            Assert.Equal(NirValue.NewFloat(timeUnit), meta["time_unit"]);
            Assert.Equal(NirValue.NewFloat(Dt), meta["dt"]);

            var net = NirFiles.Read(path);
            Assert.Equal(timeUnit, net.Conventions.TimeUnit);
            Assert.Equal(Dt, net.Conventions.Dt);
            Assert.Equal("superSpike(100)", net.Conventions.Surrogate.Name);
            Assert.Empty(net.Warnings);
            // The time constants are stored in the unit: tau_mem 8 .. 15 ms.
            var tauMem = net.Parameters["hidden"]["tau_mem"].ToDoubleArray();
            Assert.All(tauMem, t => Assert.InRange(t * timeUnit, 8e-3 * (1 - 1e-12), 15e-3 * (1 + 1e-12)));
            SameDynamics(before, net.Graph.Run(net.Parameters, 40, net.Conventions.Dt, new Dictionary<string, Tensor> { ["x"] = x }, record: OwnRecord));

            // Explicit conventions override the recorded ones.
            var other = NirFiles.Read(path, NirConventions.Steps(Dt).WithSurrogate(Surrogates.Triangle(0.5)));
            Assert.Equal(Dt, other.Conventions.TimeUnit);
            Assert.Equal("triangle(0.5)", other.Conventions.Surrogate.Name);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void ConventionsWrapTheCoresOptions()
    {
        Assert.Equal(NirOptionsModule.defaults.TimeUnit, NirConventions.Default.TimeUnit);
        Assert.Equal(NirOptionsModule.defaults.Dt, NirConventions.Default.Dt);
        Assert.Equal(1e-3, NirConventions.Default.TimeUnit);
        Assert.Equal(1e-3, NirConventions.Default.Dt);
        Assert.Equal(NirOptionsModule.defaults.Surrogate.Name, NirConventions.Default.Surrogate.Name);
        Assert.Equal(1e-4, NirConventions.Steps(1e-4).TimeUnit);
        var micro = new NirConventions(1e-6, 1e-4);
        Assert.Equal(1e-6, micro.TimeUnit);
        Assert.Equal("superSpike(100)", micro.Surrogate.Name);
        Assert.Equal("sigmoid(5)", new NirConventions(1e-6, 1e-4, Surrogates.Sigmoid(5)).Surrogate.Name);
        var w = NirConventions.Seconds(1e-3).WithSurrogate(Surrogates.Arctan());
        Assert.Equal(1.0, w.TimeUnit);
        Assert.Equal("arctan(2)", w.Surrogate.Name);
        Assert.Contains("time unit 1 s", w.ToString());
        foreach (var bad in new[] { 0.0, -1e-3, double.NaN, double.PositiveInfinity })
        {
            Assert.Contains("positive and finite", MessageOf<ArgumentException>(() => NirConventions.Milliseconds(bad)));
            Assert.Contains("positive and finite", MessageOf<ArgumentException>(() => new NirConventions(bad, 1e-3)));
        }
    }

    // (d) Warnings --------------------------------------------------------------------------------------

    [Fact]
    public void NorsesSecondsGiveAWarningWhenReadAsMillisecondsAndNoneWhenReadAsSeconds()
    {
        var file = Fixture("legacy/lif_norse.nir");
        var asDefault = NirFiles.Read(file);
        var warning = Assert.Single(asDefault.Warnings);
        Assert.Contains("seconds", warning);
        Assert.Equal(Assert.Single(Nir.warnings(Nir.read(file).Item1)), warning);
        Assert.Equal(1e-3, asDefault.Conventions.TimeUnit);
        Assert.Same(asDefault.Warnings, asDefault.Warnings);   // a value, not recomputed
        // The same with explicit defaults.
        Assert.Equal(asDefault.Warnings, NirFiles.Read(file, NirConventions.Default).Warnings);

        var asSeconds = NirFiles.Read(file, NirConventions.Seconds(1e-4));
        Assert.Empty(asSeconds.Warnings);
        Assert.Equal(1.0, asSeconds.Conventions.TimeUnit);
        Assert.Equal(1e-4, asSeconds.Conventions.Dt);
        // The conventions change what the network computes.
        var shape = asSeconds.Graph.ShapeOf(asSeconds.Inputs[0]);
        var x = Drive(asSeconds.Parameters.Leaves[0].DType, 5.0, [20, 1, .. shape]);
        var outputs = asSeconds.Outputs;
        var a = asSeconds.Graph.Run(asSeconds.Parameters, 20, 1e-4, new Dictionary<string, Tensor> { [asSeconds.Inputs[0]] = x }, record: outputs);
        var b = asDefault.Graph.Run(asDefault.Parameters, 20, 1e-3, new Dictionary<string, Tensor> { [asDefault.Inputs[0]] = x }, record: outputs);
        Assert.NotEqual(a[outputs[0]].Output!.ToDoubleArray(), b[outputs[0]].Output!.ToDoubleArray());
    }

    [Fact]
    public void AFileReadWithConventionsIsWrittenBackAsItWasWithoutThem()
    {
        // The core writes a graph read from NIR back as the document it was, metadata included, so
        // a file that recorded no conventions still records none: read it back with them again.
        var net = NirFiles.Read(Fixture("legacy/lif_norse.nir"), NirConventions.Seconds(1e-4));
        var path = TempNir();
        try
        {
            NirFiles.Write(path, net.Graph, net.Parameters);
            Assert.False(NirFile.read(path).Graph.Metadata.ContainsKey("time_unit"));
            Assert.Single(NirFiles.Read(path).Warnings);
            var back = NirFiles.Read(path, NirConventions.Seconds(1e-4));
            Assert.Empty(back.Warnings);
            SameLeaves(net.Parameters, back.Parameters);
        }
        finally { File.Delete(path); }
    }

    // (e) Errors ------------------------------------------------------------------------------------------

    [Fact]
    public void ReadingErrorsAreTheCoresWithItsMessages()
    {
        var missing = Path.Combine(Path.GetTempPath(), "snnfunc-no-such-" + Guid.NewGuid().ToString("N") + ".nir");
        var e = Assert.Throws<FileNotFoundException>(() => NirFiles.Read(missing));
        Assert.Contains(missing, e.Message);
        Assert.Contains("does not exist", e.Message);
        Assert.Equal(Assert.Throws<FileNotFoundException>(() => Nir.read(missing)).Message, e.Message);
        Assert.Throws<FileNotFoundException>(() => NirFiles.Read(missing, NirConventions.Seconds(1e-3)));
        Assert.Contains("path is empty", MessageOf<ArgumentException>(() => NirFiles.Read(" ")));
        Assert.Throws<ArgumentNullException>(() => NirFiles.Read(null!));

        // Not HDF5.
        var text = TempNir();
        try
        {
            File.WriteAllText(text, "not a NIR file", Encoding.UTF8);
            var notHdf5 = Assert.Throws<InvalidDataException>(() => NirFiles.Read(text)).Message;
            Assert.Contains("not an HDF5 file", notHdf5);
            Assert.Contains(text, notHdf5);
        }
        finally { File.Delete(text); }

        // Not valid NIR: the message names the node and what is wrong.
        var unknown = Fixture("edge_cases/err_unknown_type.nir");
        var bad = Assert.Throws<InvalidDataException>(() => NirFiles.Read(unknown)).Message;
        Assert.Equal(Assert.Throws<InvalidDataException>(() => Nir.read(unknown)).Message, bad);
        Assert.Contains("is not a NIR primitive", bad);

    }

    private static string WriteError<TException>(NetworkGraph g, GraphParameters p, NirConventions? conventions = null) where TException : Exception
    {
        var path = TempNir();
        try
        {
            var message = MessageOf<TException>(() => NirFiles.Write(path, g, p, conventions));
            Assert.False(File.Exists(path), "a failed write leaves no file");
            return message;
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void WhatNirCannotExpressIsAnErrorNamingTheNode()
    {
        // The graph of the F# test "what NIR cannot express is an error naming the node", from C#
        // and from F#: the same message.
        var g = NetworkGraph.Create().Input("x", 3)
            .Population("h", 2, Neurons.Lif(new LifParameters { Reset = ResetMode.BySubtraction }))
            .Connect("x", "h", Projections.Dense());
        var d = Snn.Lif.defaults;
        var fg = FsBuild(
            f => GraphModule.input("x", 3, f),
            f => GraphModule.population("h", 2, NeuronModule.lif(new Snn.Lif.Spec(d.TauSyn, d.TauMem, d.VLeak, d.VTh, d.VReset, Snn.Reset.BySubtraction, d.Dt, d.Surrogate, d.RefractorySteps)), f),
            f => GraphModule.connect("x", "h", ProjectionModule.dense(InitModule.normal), f));
        var p = g.Init(RandomKey.FromSeed(0));
        var subtraction = WriteError<ArgumentException>(g, p);
        Assert.Contains("node 'h'", subtraction);
        Assert.Contains("subtraction", subtraction);
        var path = TempNir();
        Assert.Equal(MessageOf<ArgumentException>(() => Nir.write(path, fg, GraphModule.init(SnnFunc.Random.key(0L), fg))), subtraction);
        Assert.False(File.Exists(path));

        NetworkGraph With(PopulationNeuron neuron, SynapticProjection? projection = null) =>
            NetworkGraph.Create().Input("x", 3).Population("h", 2, neuron).Connect("x", "h", projection ?? Projections.Dense()).Output("output", "h");
        GraphParameters Init(NetworkGraph n) => n.Init(RandomKey.FromSeed(1));

        var alif = With(Neurons.Alif());
        Assert.Contains("adaptive neurons", WriteError<ArgumentException>(alif, Init(alif)));
        var refractory = With(Neurons.Lif(new LifParameters { RefractorySteps = 2 }));
        Assert.Contains("refractory", WriteError<ArgumentException>(refractory, Init(refractory)));
        var delayed = With(Neurons.Lif(), Projections.Dense().Delayed(2));
        var delay = WriteError<ArgumentException>(delayed, Init(delayed));
        Assert.Contains("node 'x->h'", delay);
        Assert.Contains("delayed projections", delay);

        // A population's step against the conventions'.
        var lif = With(Neurons.Lif(new LifParameters { Dt = 0.5e-3 }));
        var step = WriteError<ArgumentException>(lif, Init(lif), NirConventions.Milliseconds(1e-3));
        Assert.Contains("node 'h'", step);
        Assert.Contains("differs from the export step", step);
        // A graph read in one time unit, written in another.
        var norse = NirFiles.Read(Fixture("legacy/lif_norse.nir"), NirConventions.Seconds(1e-4));
        Assert.Contains("another time unit", WriteError<ArgumentException>(norse.Graph, norse.Parameters, NirConventions.Milliseconds(1e-4)));
        // Missing parameters, an invalid graph, a missing folder, null arguments.
        var lifParams = Init(lif);
        var noWeight = lifParams.With("x->h", new Dictionary<string, Tensor>());
        Assert.Contains("have no 'weight'", WriteError<ArgumentException>(lif, noWeight));
        Assert.Contains("leads nowhere", WriteError<ArgumentException>(lif.Projection("dangling", Projections.Dense()).Edge("x", "dangling"), lifParams));
        var folder = Path.Combine(Path.GetTempPath(), "snnfunc-no-such-" + Guid.NewGuid().ToString("N"), "g.nir");
        Assert.Contains("does not exist", MessageOf<DirectoryNotFoundException>(() => NirFiles.Write(folder, lif, lifParams)));
        Assert.Throws<ArgumentNullException>(() => NirFiles.Write(TempNir(), null!, lifParams));
        Assert.Throws<ArgumentNullException>(() => NirFiles.Write(TempNir(), lif, null!));
    }

    // (f) Transform nodes ----------------------------------------------------------------------------------

    private const double TDt = 1e-3;

    private static readonly LifParameters TLif = new() { Dt = TDt, VTh = 0.3 };

    /// img [2, 3] → flatten → scale → LIF h [4] → per-neuron delay → readout (declared [3]) → threshold → output.
    private static NetworkGraph TransformGraph() => NetworkGraph.Create()
        .Input("img", [2, 3])
        .Transform("flat", GraphTransforms.Flatten())
        .Edge("img", "flat")
        .Transform("gain", GraphTransforms.Scale(Inits.Uniform(0.5, 1.5)))
        .Edge("flat", "gain")
        .Population("h", 4, Neurons.Lif(TLif))
        .Connect("gain", "h", Projections.Dense(Inits.Normal(6)))
        .Transform("late", GraphTransforms.NeuronDelay(Inits.FromTensor(F64(0, 1, 2.4, 3)), 1e-3, TDt, 3))
        .Edge("h", "late")
        .Projection("readout", Projections.Dense(Inits.Normal(3)).WithOutShape(3))
        .Edge("late", "readout")
        .Transform("spike", GraphTransforms.Threshold(Inits.Constant(0.2)))
        .Edge("readout", "spike")
        .Output("output", "spike");

    private static FsGraph FsTransformGraph()
    {
        var d = Snn.Lif.defaults;
        var lif = new Snn.Lif.Spec(d.TauSyn, d.TauMem, d.VLeak, 0.3, d.VReset, d.Reset, TDt, d.Surrogate, d.RefractorySteps);
        return FsBuild(
            g => GraphModule.inputShaped("img", [2, 3], g),
            g => GraphModule.transform("flat", Transform.NewFlatten(0, -1), g),
            g => GraphModule.edge("img", "flat", g),
            g => GraphModule.transform("gain", Transform.NewScale(InitModule.uniform(0.5, 1.5)), g),
            g => GraphModule.edge("flat", "gain", g),
            g => GraphModule.population("h", 4, NeuronModule.lif(lif), g),
            g => GraphModule.connect("gain", "h", ProjectionModule.dense(InitModule.normalWith(6.0)), g),
            g => GraphModule.transform("late", Transform.NewNeuronDelay(InitModule.ofTensor(F64(0, 1, 2.4, 3)), 1e-3, TDt, 3), g),
            g => GraphModule.edge("h", "late", g),
            g => GraphModule.addNode("readout", Node.NewSynapses(ProjectionModule.withOutShape([3], ProjectionModule.dense(InitModule.normalWith(3.0)))), g),
            g => GraphModule.edge("late", "readout", g),
            g => GraphModule.transform("spike", Transform.NewThreshold(InitModule.constant(0.2), Surrogate.superSpike(100.0)), g),
            g => GraphModule.edge("readout", "spike", g),
            g => GraphModule.transform("output", Transform.Identity, g),
            g => GraphModule.edge("spike", "output", g));
    }

    [Fact]
    public void TransformNodesBuiltInCSharpRunAndDifferentiateBitwiseAsGraphTransform()
    {
        var g = TransformGraph().Validate();
        var fg = FsTransformGraph();
        Assert.Equal(fg.Edges.Select(e => new GraphEdge(e.Item1, e.Item2)), g.Edges);
        Assert.Equal(
            [new GraphNode("img", GraphNodeKind.Input), new GraphNode("flat", GraphNodeKind.Transform), new GraphNode("gain", GraphNodeKind.Transform),
             new GraphNode("h", GraphNodeKind.Population), new GraphNode("gain->h", GraphNodeKind.Projection), new GraphNode("late", GraphNodeKind.Transform),
             new GraphNode("readout", GraphNodeKind.Projection), new GraphNode("spike", GraphNodeKind.Transform), new GraphNode("output", GraphNodeKind.Transform)],
            g.Nodes);
        Assert.Equal(new[] { 6 }, g.ShapeOf("flat"));
        Assert.Equal(new[] { 3 }, g.ShapeOf("output"));

        var p = g.Init(RandomKey.FromSeed(11), DType.Float64);
        var fp = GraphModule.initAs(DType.Float64, SnnFunc.Random.key(11L), fg);
        SameLeaves(fp, p);
        Assert.Equal(new[] { 6 }, p["gain"]["scale"].Shape);
        Assert.Equal(new[] { 3 }, p["spike"]["threshold"].Shape);
        Assert.Equal([0, 1, 2.4, 3], p["late"]["delay"].ToDoubleArray());
        Assert.False(p.ContainsKey("flat"));
        Assert.False(p.ContainsKey("output"));

        const int steps = 30;
        var x = Drive(DType.Float64, 1.0, steps, 2, 2, 3);
        var record = new[] { "flat", "gain", "h", "late", "readout", "spike", "output" };
        var r = g.Run(p, steps, TDt, new Dictionary<string, Tensor> { ["img"] = x }, record);
        var fr = GraphModule.run(fg, fp, RunConfigModule.recording(ListModule.OfSeq(record), RunConfigModule.steps(steps, TDt)), MapModule.OfSeq([Tuple.Create("img", x)]));
        SameRun(fr, r);

        // What the transforms do, by hand: flatten, scale, delays rounded to whole 1 ms steps, threshold.
        Identical(x.Reshape(steps, 2, 6), r["flat"].Output!);
        Identical(x.Reshape(steps, 2, 6) * p["gain"]["scale"], r["gain"].Output!);
        var hs = r["h"].Spikes!;
        Assert.True(hs.Sum().ToScalar() > 5, "h spikes");
        var late = r["late"].Output!;
        static double[] At(Tensor a, int t, int neuron) => a.Narrow(0, t, 1).Narrow(2, neuron, 1).ToDoubleArray();
        int[] lags = [0, 1, 2, 3];                        // 2.4 ms rounds to 2 steps
        for (int neuron = 0; neuron < 4; neuron++)
            for (int t = 0; t < steps; t++)
                Assert.Equal(t < lags[neuron] ? [0.0, 0.0] : At(hs, t - lags[neuron], neuron), At(late, t, neuron));
        var above = (r["readout"].Output! - p["spike"]["threshold"]).ToDoubleArray().Select(v => v > 0 ? 1.0 : 0.0);
        Assert.Equal(above, r["spike"].Output!.ToDoubleArray());
        Identical(r["spike"].Output!, r["output"].Output!);

        // Gradients through the threshold's surrogate (the default, SuperSpike(100)) and the scale.
        Tensor Loss(Tensor o) => (o * Tensor.Arange(3, DType.Float64)).Sum();
        var vg = Autodiff.ValueAndGrad((GraphParameters q) => Loss(g.Run(q, steps, TDt, new Dictionary<string, Tensor> { ["img"] = x }, ["output"])["output"].Output!), p);
        var fgrad = Ad.grad(FuncConvert.FromFunc((FsParams q) =>
            Loss(GraphModule.run(fg, q, RunConfigModule.recording(ListModule.OfSeq(["output"]), RunConfigModule.steps(steps, TDt)), MapModule.OfSeq([Tuple.Create("img", x)])).Item("output").Output)), fp);
        SameLeaves(fgrad, vg.Gradient);
        Assert.True(vg.Gradient["readout"]["weight"].Abs().Max().ToScalar() > 0, "the surrogate passes a gradient");
        Assert.True(vg.Gradient["gain"]["scale"].Abs().Max().ToScalar() > 0, "the gradient reaches the scale");
    }

    [Fact]
    public void TransformsDescribeThemselvesAndCheckWhatTheCoreDoesNot()
    {
        Assert.Equal("identity", GraphTransforms.Identity.ToString());
        Assert.Empty(GraphTransforms.Identity.ParameterNames);
        Assert.Equal("scale(constant(2))", GraphTransforms.Scale(Inits.Constant(2)).ToString());
        Assert.Equal(["scale"], GraphTransforms.Scale(Inits.Constant(2)).ParameterNames);
        Assert.Equal("threshold(constant(0.5), superSpike(100))", GraphTransforms.Threshold(Inits.Constant(0.5)).ToString());
        Assert.Equal("superSpike(100)", NirOptionsModule.defaults.Surrogate.Name);
        Assert.Equal("threshold(constant(0.5), boxcar(1))", GraphTransforms.Threshold(Inits.Constant(0.5), Surrogates.Boxcar()).ToString());
        Assert.Equal(["threshold"], GraphTransforms.Threshold(Inits.Zeros).ParameterNames);
        Assert.Equal("flatten(0, -1)", GraphTransforms.Flatten().ToString());
        Assert.Equal(["delay"], GraphTransforms.NeuronDelay(Inits.Zeros, 1e-3, 1e-3, 2).ParameterNames);
        Assert.Contains("at most 2 steps", GraphTransforms.NeuronDelay(Inits.Zeros, 1e-3, 1e-3, 2).ToString());
        Assert.Contains("gain: scale(uniform(0.5, 1.5))", TransformGraph().ToString());
        Assert.Contains("readout: dense(normal(3)), out [3]", TransformGraph().ToString());
        Assert.Equal(new[] { 3 }, Projections.Dense().WithOutShape(3).OutShape);
        Assert.Null(Projections.Dense().OutShape);

        Assert.Contains("positive and finite", MessageOf<ArgumentException>(() => GraphTransforms.NeuronDelay(Inits.Zeros, 0, 1e-3, 2)));
        Assert.Contains("positive and finite", MessageOf<ArgumentException>(() => GraphTransforms.NeuronDelay(Inits.Zeros, 1e-3, double.NaN, 2)));
        Assert.Contains(">= 1 step", MessageOf<ArgumentException>(() => GraphTransforms.NeuronDelay(Inits.Zeros, 1e-3, 1e-3, 0)));
        Assert.Throws<ArgumentNullException>(() => GraphTransforms.Scale(null!));
        Assert.Throws<ArgumentNullException>(() => NetworkGraph.Create().Transform("t", null!));
        Assert.Contains("positive dimensions", MessageOf<ArgumentException>(() => Projections.Dense().WithOutShape(0)));
    }

    [Fact]
    public void FlattenMergesPerSampleAxesAndTransformErrorsAreTheCores()
    {
        var g = NetworkGraph.Create().Input("x", [2, 3, 4]);
        NetworkGraph Flat(int s, int e) => g.Transform("f", GraphTransforms.Flatten(s, e)).Edge("x", "f");
        Assert.Equal(new[] { 24 }, Flat(0, -1).ShapeOf("f"));
        Assert.Equal(new[] { 2, 12 }, Flat(1, 2).ShapeOf("f"));
        Assert.Equal(new[] { 2, 12 }, Flat(-2, -1).ShapeOf("f"));
        Assert.Equal(new[] { 6, 4 }, Flat(0, 1).ShapeOf("f"));
        Assert.Equal(new[] { 2, 3, 4 }, Flat(1, 1).ShapeOf("f"));
        var fs = GraphModule.edge("x", "f", GraphModule.transform("f", Transform.NewFlatten(2, 1), GraphModule.inputShaped("x", [2, 3, 4], GraphModule.empty)));
        var merge = MessageOf<ArgumentException>(() => Flat(2, 1).Validate());
        Assert.Equal(MessageOf<ArgumentException>(() => GraphModule.validate(fs)), merge);
        Assert.Contains("the flatten 'f' cannot merge axes 2..1", merge);
        Assert.Contains("cannot merge", MessageOf<ArgumentException>(() => Flat(0, 3).Validate()));

        // A transform without input; an output of a missing node; a name taken; a delay run with another step.
        Assert.Contains("the transform 't' has no input", MessageOf<ArgumentException>(() => g.Transform("t", GraphTransforms.Identity).Validate()));
        Assert.Contains("'nowhere'", MessageOf<ArgumentException>(() => g.Output("out", "nowhere")));
        Assert.Contains("'x' already exists", MessageOf<ArgumentException>(() => g.Output("x", "x")));
        var d = NetworkGraph.Create().Input("x", 2)
            .Transform("late", GraphTransforms.NeuronDelay(Inits.Constant(1), 1e-3, 1e-3, 2)).Edge("x", "late")
            .Output("out", "late");
        var p = d.Init(RandomKey.FromSeed(0));
        var x = Tensor.Ones(4, 1, 2);
        Assert.Equal([0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], d.Run(p, 4, 1e-3, new Dictionary<string, Tensor> { ["x"] = x }, ["out"])["out"].Output!.ToDoubleArray());
        Assert.Contains("the delay 'late' converts with the step", MessageOf<ArgumentException>(() =>
            d.Run(p, 4, 2e-3, new Dictionary<string, Tensor> { ["x"] = x })));
    }
}
