using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using FsLayers = SnnFunc.Layers;
using static SnnFunc.CSharp.Tests.TestUtil;

namespace SnnFunc.CSharp.Tests;

/// The same computation through the F# modules (called from C#) and through the facade gives
/// bitwise identical numbers: the facade adds no logic of its own.
public class FSharpEquivalenceTests
{
    private static FSharpFunc<Tensor, Tensor> Fs(Func<Tensor, Tensor> f) => FuncConvert.FromFunc(f);

    [Fact]
    public void TransformsMatchAdModule()
    {
        var x = Tensor.FromArray(new float[] { 0.5f, -1, 2, 3.5f }, 4);
        Func<Tensor, Tensor> f = t => (t.Sin() * t).Sum() + t.Exp().Mean();
        Identical(Ad.grad(Fs(f), x), Autodiff.Grad(f)(x));
        Identical(Ad.hessian(Fs(f), x), Autodiff.Hessian(f, x));
        var v = Tensor.OnesLike(x);
        var fsJvp = Ad.jvp(Fs(f), x, v);
        var csJvp = Autodiff.Jvp(f, x, v);
        Identical(fsJvp.Item1, csJvp.Value);
        Identical(fsJvp.Item2, csJvp.Tangent);
        var m = Tensor.FromArray(Enumerable.Range(0, 12).Select(i => (float)i / 7).ToArray(), 4, 3);
        Identical(Ad.vmap(Fs(f), m), Autodiff.Vmap(f)(m));
        Identical(Ad.jacfwd(Fs(t => t.Tanh() * t.Sum()), x), Autodiff.Jacobian(t => t.Tanh() * t.Sum(), x, JacobianMode.Forward));
    }

    [Fact]
    public void YinYangDataMatch()
    {
        var fs = SnnFunc.Data.YinYang.splits(3L);
        var cs = Datasets.YinYang(seed: 3);
        Identical(fs.Train.X, cs.Train.X);
        Assert.Equal(fs.Test.Labels, cs.Test.Labels);
        Assert.Equal(5000, cs.Train.Count);
        Assert.Equal(1000, cs.Validation.Count);
    }

    [Fact]
    public void LifStepMatchesSnnModule()
    {
        var key = RandomKey.FromSeed(1);
        var input = key.Normal([4, 6]);
        var s0 = new LifState(key.FoldIn(1).Normal([4, 6]), key.FoldIn(2).Normal([4, 6]));
        var p = new LifParameters { Dt = 0.5e-3, Reset = ResetMode.BySubtraction };
        var fsP = new Snn.Lif.Spec(5e-3, 10e-3, 0.0, 1.0, 0.0, Snn.Reset.BySubtraction, 0.5e-3, Surrogate.superSpike(100.0), 0);
        var fs = Snn.Lif.step(Snn.Lif.config(fsP), Snn.Lif.paramsAs(DType.Float32, fsP), new Snn.Lif.State(s0.V, s0.I, Tensor.ZerosLike(s0.V)), input);
        var cs = Neurons.LifStep(p, s0, input);
        Identical(fs.Item1.V, cs.Carry.V);
        Identical(fs.Item1.I, cs.Carry.I);
        Identical(fs.Item2, cs.Output);
    }

    [Fact]
    public void NetworkOptimizerAndLossMatch()
    {
        var dt = 0.5e-3;
        var fsLif = new Snn.Lif.Spec(5e-3, 10e-3, 0.0, 1.0, 0.0, Snn.Reset.ToValue, dt, Surrogate.superSpike(100.0), 0);
        var fsLi = new Snn.Li.Spec(5e-3, 10e-3, 0.0, dt);
        var fsNet = FsLayers.serial(ListModule.OfArray(new[]
        {
            FsLayers.denseWith(new FsLayers.DenseOptions(false, 6.0, DType.Float32), 16),
            FsLayers.lif(fsLif),
            FsLayers.denseWith(new FsLayers.DenseOptions(false, 2.0, DType.Float32), 3),
            FsLayers.li(fsLi),
        }));
        var csNet = Network.Sequential(
            Network.Dense(16, scale: 6),
            Network.Lif(new LifParameters { Dt = dt }),
            Network.Dense(3, scale: 2),
            Network.Li(new LiParameters { Dt = dt }));

        var key = RandomKey.FromSeed(7);
        var fsInit = LayerModule.init(fsNet, SnnFunc.Random.key(7L), [5]);
        var csInit = csNet.Init(key, 5);
        Assert.Equal(fsInit.Item2, csInit.OutputShape);
        var fsLeaves = Tree.leaves(fsInit.Item1);
        Assert.Equal(fsLeaves.Length, csInit.Parameters.Leaves.Count);
        for (int i = 0; i < fsLeaves.Length; i++) Identical(fsLeaves[i], csInit.Parameters.Leaves[i]);

        var data = Datasets.YinYang(trainCount: 32, validationCount: 1, testCount: 1).Train;
        var spikesFs = Encode.latency(40, dt, 15e-3, false, data.X);
        var spikesCs = Encoders.Latency(data.X, 40, dt, 15e-3);
        Identical(spikesFs, spikesCs);
        var labels = data.Labels.ToArray();

        var fsLoss = FuncConvert.FromFunc<Params, Tensor>(p =>
            Loss.crossEntropy(Decode.maxOverTime(LayerModule.apply(fsNet, p, spikesFs)), labels));
        Func<NetworkParameters, Tensor> csLoss = p =>
            Losses.CrossEntropy(Decoders.MaxOverTime(csNet.Apply(p, spikesCs)), data.Labels);

        var fsTx = Optim.adamWith(Optim.cosineDecay(0.01, 100, 0.05), 0.9, 0.999, 1e-8);
        var csTx = Optimizers.Adam(Schedules.CosineDecay(0.01, 100, alpha: 0.05));
        var fsP = fsInit.Item1;
        var fsState = Optim.init(fsTx, fsP);
        var csP = csInit.Parameters;
        var csState = csTx.Init(csP);
        for (int step = 0; step < 3; step++)
        {
            var fsVg = Ad.valueAndGrad(fsLoss, fsP);
            var csVg = Autodiff.ValueAndGrad(csLoss, csP);
            Identical(fsVg.Item1, csVg.Value);
            var fsUpdate = Optim.update(fsTx, fsVg.Item2, fsState, fsP);
            fsP = Optim.applyUpdates(fsP, fsUpdate.Item1);
            fsState = fsUpdate.Item2;
            var csStep = csTx.Step(csP, csVg.Gradient, csState);
            csP = csStep.Parameters;
            csState = csStep.State;
        }
        var a = Tree.leaves(fsP);
        for (int i = 0; i < a.Length; i++) Identical(a[i], csP.Leaves[i]);
        var fsAvg = Tree.leaves(Optim.movingAverage(0.9, fsInit.Item1, fsP));
        var csAvg = Optimizers.MovingAverage(0.9, csInit.Parameters, csP);
        for (int i = 0; i < fsAvg.Length; i++) Identical(fsAvg[i], csAvg.Leaves[i]);
        Assert.Equal(
            Loss.accuracy(Decode.maxOverTime(LayerModule.apply(fsNet, fsP, spikesFs)), labels),
            Losses.Accuracy(Decoders.MaxOverTime(csNet.Apply(csP, spikesCs)), data.Labels));
    }

    [Fact]
    public void SchedulesMatch()
    {
        var fs = Optim.cosineDecay(0.01, 50, 0.1);
        var cs = Schedules.CosineDecay(0.01, 50, 0.1);
        for (int i = 0; i < 60; i += 7) Assert.Equal(Optim.learningRate(fs, i), Schedules.LearningRate(cs, i));
        Assert.Equal(0.3, Schedules.LearningRate(Schedules.Constant(0.3), 12));
        Assert.Equal(0.25, Schedules.ExponentialDecay(1.0, 10, 0.5, staircase: true)(Tensor.Scalar(25, DType.Float64)).ToScalar());
        Assert.Equal(Optim.learningRate(Optim.exponentialDecay(1.0, 10, 0.5, true), 25),
            Schedules.LearningRate(Schedules.ExponentialDecay(1.0, 10, 0.5, staircase: true), 25));
    }
}
