using static SnnFunc.CSharp.Tests.TestUtil;

namespace SnnFunc.CSharp.Tests;

public class SnnTests
{
    [Fact]
    public void SpikeIsHeavisideWithSurrogateGradient()
    {
        var x = Tensor.FromArray(new double[] { -0.5, 0.0, 0.2, 1.5 }, 4);
        var s = Surrogates.SuperSpike(10);
        Assert.Equal(new double[] { 0, 0, 1, 1 }, Neurons.Spike(s, x).ToDoubleArray());
        var g = Autodiff.Grad(t => Neurons.Spike(s, t).Sum())(x);
        Close(x.ToDoubleArray().Select(u => 1 / Math.Pow(10 * Math.Abs(u) + 1, 2)).ToArray(), g.ToDoubleArray(), 1e-12);
        // Forward mode uses the same rule.
        Close(g, Autodiff.Jvp(t => Neurons.Spike(s, t), x, Tensor.OnesLike(x)).Tangent, 1e-12);
        Assert.Equal("superSpike(10)", s.Name);
        var custom = Surrogates.Custom("const", t => Tensor.OnesLike(t) * 3.0);
        Assert.Equal(new double[] { 3, 3, 3, 3 }, Autodiff.Grad(t => Neurons.Spike(custom, t).Sum())(x).ToDoubleArray());
        Close(Surrogates.Triangle(0.5).Derivative(x), Tensor.FromArray(new double[] { 0, 2, 1.2, 0 }, 4), 1e-12);
    }

    [Fact]
    public void InvalidParametersAreReportedByName()
    {
        var e = Assert.Throws<ArgumentException>(() => new LifParameters { TauMem = -1 }.Validate());
        Assert.Contains("TauMem", e.Message);
        Assert.Throws<ArgumentException>(() => Network.Lif(new LifParameters { VTh = -1 }));
        Assert.Throws<ArgumentException>(() => new AdExParameters { DeltaT = 0 }.Validate());
        Assert.Throws<ArgumentException>(() => Surrogates.SuperSpike(-1));
    }

    [Fact]
    public void ScannedLifStepMatchesFusedSequence()
    {
        var key = RandomKey.FromSeed(3);
        var currents = key.Normal([30, 4, 8], DType.Float64) * 0.4 + 0.3;
        var p = new LifParameters { Dt = 0.5e-3 };
        Func<Tensor, Tensor> scanned = c =>
            Autodiff.Scan((LifState s, Tensor x) => Neurons.LifStep(p, s, x), LifState.Zeros([4, 8], DType.Float64), c).Outputs;
        Func<Tensor, Tensor> fused = c => Neurons.LifSequence(p, c).Spikes;
        Identical(scanned(currents), fused(currents));
        Assert.True(scanned(currents).Sum().ToScalar() > 0, "some neurons spike");
        var w = key.FoldIn(1).Normal([30, 4, 8], DType.Float64);
        Close(Autodiff.Grad(c => (scanned(c) * w).Sum())(currents), Autodiff.Grad(c => (fused(c) * w).Sum())(currents), 1e-9);
        // A layer from the step function equals the generic LIF layer.
        var fromStep = Network.FromStep("myLif", (shape, dtype) => LifState.Zeros(shape, dtype), (LifState s, Tensor x) => Neurons.LifStep(p, s, x));
        var init = fromStep.Init(key, 8);
        Identical(Network.LifGeneric(p).Apply(init.Parameters, currents), fromStep.Apply(init.Parameters, currents));
    }

    [Fact]
    public void OtherNeuronStepsRunInScans()
    {
        var xs = Tensor.Full([50, 2, 3], 0.3);
        var alif = Autodiff.Scan((AlifState s, Tensor x) => Neurons.AlifStep(new AlifParameters(), s, x), AlifState.Zeros([2, 3]), xs);
        var lif = Autodiff.Scan((LifState s, Tensor x) => Neurons.LifStep(new LifParameters(), s, x), LifState.Zeros([2, 3]), xs);
        Assert.True(alif.Outputs.Sum().ToScalar() < lif.Outputs.Sum().ToScalar(), "adaptation lowers the rate");
        Assert.True(alif.Carry.A.Sum().ToScalar() > 0);
        var adex = Autodiff.Scan((AdExState s, Tensor x) => Neurons.AdExStep(new AdExParameters(), s, x), AdExState.Zeros([2, 3]), Tensor.Full([400, 2, 3], 3.0));
        Assert.True(adex.Outputs.Sum().ToScalar() > 0);
        var iff = Autodiff.Scan((IfState s, Tensor x) => Neurons.IfStep(new IfParameters(), s, x), IfState.Zeros([1]), Tensor.Full([10, 1], 0.3));
        Assert.Equal(new float[] { 0, 0, 0, 1, 0, 0, 0, 1, 0, 0 }, iff.Outputs.ToArray());
        var li = Autodiff.Scan((LifState s, Tensor x) => Neurons.LiStep(new LiParameters(), s, x), LifState.Zeros([1]), Tensor.Full([5, 1], 1.0));
        Close(li.Outputs, Neurons.LiSequence(new LiParameters(), Tensor.Full([5, 1, 1], 1.0)).Reshape(5, 1), 1e-6);
    }

    [Fact]
    public void NetworksComposeAndExposeTheirParameters()
    {
        var net = Network.Dense(20, scale: 2, bias: true).Then(Network.Lif()).Then(Network.Dropout(0.5)).Then(Network.Dense(3));
        Assert.Equal(4, net.Layers.Count);
        var init = net.Init(RandomKey.FromSeed(0), 5);
        Assert.Equal(new[] { 3 }, init.OutputShape);
        var p = init.Parameters;
        Assert.Equal(ParametersKind.Children, p.Kind);
        Assert.Equal(new[] { 5, 20 }, p[0]["W"].Shape);
        Assert.Equal(new float[20], p[0]["b"].ToArray());
        Assert.Equal(ParametersKind.None, p[1].Kind);
        Assert.Equal(5 * 20 + 20 + 20 * 3, p.Count);
        Assert.Throws<ArgumentException>(() => p[0]["nope"]);

        var x = Tensor.Full([10, 2, 5], 1.0);
        var eval = net.Apply(p, x);
        Assert.Equal(new[] { 10, 2, 3 }, eval.Shape);
        Identical(eval, net.Apply(p, x));
        Assert.NotEqual(eval.ToArray(), net.ApplyTrain(p, RandomKey.FromSeed(1), x).ToArray());

        var both = Network.Sequential(Network.FanOut(2), Network.Parallel(Network.Dense(4), Network.Dense(4)), Network.FanInSum());
        var bi = both.Init(RandomKey.FromSeed(2), 3);
        var y = Tensor.FromArray(new float[] { 1, 2, 3 }, 1, 3);
        Close(y.MatMul(bi.Parameters[1][0]["W"]) + y.MatMul(bi.Parameters[1][1]["W"]), both.Apply(bi.Parameters, y), 1e-6);

        var scaleLayer = Network.Custom("scale",
            (key, shape) => new NetworkInit(NetworkParameters.FromWeights(new Dictionary<string, Tensor> { ["s"] = Tensor.Full([.. shape], 2.0) }), [shape]),
            (ps, input) => input * ps["s"]);
        var si = scaleLayer.Init(RandomKey.FromSeed(0), 3);
        Assert.Equal(new float[] { 2, 4, 6 }, scaleLayer.Apply(si.Parameters, y).ToArray());
        var g = Autodiff.Grad((NetworkParameters ps) => scaleLayer.Apply(ps, y).Sum())(si.Parameters);
        Assert.Equal(new float[] { 1, 2, 3 }, g["s"].ToArray());

        var rec = Network.RecurrentLif(6, scale: 2);
        var ri = rec.Init(RandomKey.FromSeed(0), 4);
        Assert.Equal(new[] { 6, 6 }, ri.Parameters["R"].Shape);
        Assert.Equal(new[] { 7, 2, 6 }, rec.Apply(ri.Parameters, Tensor.Ones(7, 2, 4)).Shape);
    }

    [Fact]
    public void EncodersDecodersAndLosses()
    {
        var x = Tensor.FromArray(new float[,] { { 0, 0.5f, 1 } });
        var z = Encoders.Latency(x, 11, 1e-3, 10e-3);
        Assert.Equal(new[] { 11, 1, 3 }, z.Shape);
        Assert.Equal(new float[] { 0, 5, 10 }, Decoders.FirstSpikeTime(z, 1e-3).ToArray().Select(t => MathF.Round(t * 1000)).ToArray());
        Assert.Equal(new float[] { 1, 1, 1 }, Decoders.SpikeCount(z).ToArray());
        Assert.Equal(new[] { 20, 1, 3 }, Encoders.Poisson(x, RandomKey.FromSeed(0), 20, 1e-3, 100).Shape);
        Assert.Equal(new[] { 4, 1, 3 }, Encoders.Current(x, 4).Shape);
        var logits = Tensor.FromArray(new double[,] { { 2, 0, 0 }, { 0, 0, 3 } });
        Assert.Equal(0.5, Losses.Accuracy(logits, [0, 1]));
        var ce = Losses.CrossEntropy(logits, [0, 2]).ToScalar();
        var expected = (-(2 - Math.Log(Math.Exp(2) + 2)) - (3 - Math.Log(Math.Exp(3) + 2))) / 2;
        Assert.Equal(expected, ce, 12);
        Assert.Equal(ce, Losses.NegativeLogLikelihood(logits.LogSoftmax(1), [0, 2]).ToScalar(), 12);
        Assert.Equal(1.0, Losses.MeanSquaredError(Tensor.Ones(4), Tensor.Zeros(4)).ToScalar());
    }

    [Fact]
    public void DatasetsBatchDeterministically()
    {
        var d = Datasets.YinYangGenerate(RandomKey.FromSeed(0), 250);
        Assert.Equal(new[] { 250, 5 }, d.X.Shape);
        Assert.Equal(3, d.BatchCount(100));
        Assert.Equal(2, d.BatchCount(100, dropLast: true));
        var a = d.Batches(100, RandomKey.FromSeed(1)).ToList();
        var b = d.Batches(100, RandomKey.FromSeed(1)).ToList();
        Assert.Equal(new[] { 100, 100, 50 }, a.Select(x => x.Count));
        Assert.Equal(a[0].Labels, b[0].Labels);
        Assert.Equal(d.Labels.Take(100), d.Batches(100).First().Labels);
        Assert.Equal(250, d.ClassCounts(3).Sum());
        Assert.Equal(10, d.Take(10).Count);
        Assert.Equal(d.Labels[7], d.Subset([7]).Labels[0]);
        foreach (var (xy, label) in d.X.ToDoubleArray().Chunk(5).Zip(d.Labels))
            Assert.Equal(label, Datasets.YinYangClassOf(xy[0], xy[1]));
    }

    [Fact]
    public void NpzFilesRoundTrip()
    {
        var path = Path.Combine(Path.GetTempPath(), $"snnfunc-cs-{Guid.NewGuid():N}.npz");
        try
        {
            var t = Tensor.Arange(6, DType.Float64).Reshape(2, 3);
            TensorFiles.SaveNpz(path, new Dictionary<string, Tensor> { ["a"] = t, ["b"] = Tensor.Ones(2) }, compressed: true);
            var back = TensorFiles.LoadNpz(path);
            Identical(t, back["a"]);
            Assert.Equal(2, back.Count);
        }
        finally { File.Delete(path); }
    }
}
