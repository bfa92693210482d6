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
}
