using static SnnFunc.CSharp.Tests.TestUtil;

namespace SnnFunc.CSharp.Tests;

public class TrainingTests
{
    [Fact]
    public void ShortYinYangTrainingLowersTheLossAndCheckpointsRoundTrip()
    {
        const double dt = 1e-3;
        const int steps = 30;
        var data = Datasets.YinYang(seed: 1, trainCount: 400, validationCount: 200, testCount: 1);
        var net = Network.Sequential(
            Network.Dense(40, scale: 6),
            Network.Lif(new LifParameters { Dt = dt }),
            Network.Dense(Datasets.YinYangClasses, scale: 2),
            Network.Li(new LiParameters { Dt = dt }));
        var keys = RandomKey.FromSeed(0).Split();
        var parameters = net.Init(keys.First, 5).Parameters;
        var optimizer = Optimizers.Chain(Optimizers.ClipByGlobalNorm(10), Optimizers.Adam(0.02));
        var state = optimizer.Init(parameters);
        Tensor Logits(NetworkParameters p, Tensor x) => Decoders.MaxOverTime(net.Apply(p, Encoders.Latency(x, steps, dt, 15e-3)));
        var before = Losses.Accuracy(Logits(parameters, data.Validation.X), data.Validation.Labels);

        List<Batch> batches = [];
        var history = Trainer.Run(epochs: 6, batchesPerEpoch: data.Train.BatchCount(50, dropLast: true), step: (epoch, b) =>
        {
            if (b == 0) batches = data.Train.Batches(50, keys.Second.FoldIn(epoch), dropLast: true).ToList();
            var batch = batches[b];
            var vg = Autodiff.ValueAndGrad(p => Losses.CrossEntropy(Logits(p, batch.X), batch.Labels), parameters);
            var next = optimizer.Step(parameters, vg.Gradient, state);
            parameters = next.Parameters;
            state = next.State;
            return new Dictionary<string, double> { ["loss"] = vg.Value.ToScalar() };
        }, endEpoch: (epoch, _) => new Dictionary<string, double>
        {
            ["val_accuracy"] = Losses.Accuracy(Logits(parameters, data.Validation.X), data.Validation.Labels),
        });

        Assert.Equal(6, history.Count);
        Assert.Equal(5, history[^1].Epoch);
        var first = history[0].Metrics["loss"];
        var last = history[^1].Metrics["loss"];
        Assert.True(last < 0.8 * first, $"loss fell from {first} to {last}");
        Assert.True(history[^1].Metrics["val_accuracy"] > before + 0.1,
            $"validation accuracy rose from {before} to {history[^1].Metrics["val_accuracy"]}");

        var path = Path.Combine(Path.GetTempPath(), $"snnfunc-cs-{Guid.NewGuid():N}.npz");
        try
        {
            Trainer.SaveCheckpoint(path, parameters, state, 6);
            var fresh = net.Init(RandomKey.FromSeed(99), 5).Parameters;
            var loaded = Trainer.LoadCheckpoint(path, fresh, optimizer.Init(fresh));
            Assert.Equal(6, loaded.EpochsDone);
            for (int i = 0; i < parameters.Leaves.Count; i++) Identical(parameters.Leaves[i], loaded.Parameters.Leaves[i]);
            for (int i = 0; i < state.Leaves.Count; i++) Identical(state.Leaves[i], loaded.State.Leaves[i]);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void OptimizersMinimiseAQuadraticOnARecord()
    {
        var target = Tensor.FromArray(new double[] { 1, -2, 3 }, 3);
        Func<Mlp, Tensor> loss = p => (p.W1 - target).Square().Sum() + p.W2.Square().Sum();
        foreach (var opt in new[] { Optimizers.Sgd(0.1), Optimizers.Momentum(0.05), Optimizers.Momentum(0.05, nesterov: true),
                     Optimizers.Adam(0.1), Optimizers.AdamW(0.1, 1e-4), Optimizers.Sgd(Schedules.ExponentialDecay(0.2, 50, 0.5)) })
        {
            var p = new Mlp(Tensor.Zeros(3).Convert(DType.Float64), Tensor.Full([2], 1.0, DType.Float64));
            var s = opt.Init(p);
            for (int i = 0; i < 300; i++)
            {
                var r = opt.Step(p, Autodiff.Grad(loss)(p), s);
                p = r.Parameters;
                s = r.State;
            }
            Assert.True(loss(p).ToScalar() < 1e-3, $"{loss(p).ToScalar()}");
        }
        var u = Optimizers.Scale(-0.5).Update(new[] { Tensor.Ones(2) }, Optimizers.Scale(-0.5).Init(new[] { Tensor.Ones(2) }), new[] { Tensor.Ones(2) });
        Assert.Equal(new float[] { -0.5f, -0.5f }, u.Updates[0].ToArray());
    }
}
