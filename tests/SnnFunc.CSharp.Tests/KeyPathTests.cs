using static SnnFunc.CSharp.Tests.TestUtil;

namespace SnnFunc.CSharp.Tests;

/// A neuron population's learnable constants.
public sealed record Population(Tensor TauMem, Tensor TauSyn);

/// Nested containers of every kind: a dictionary of records, an array, a tuple.
public sealed record Layered(Dictionary<string, Population> Hidden, Tensor[] Weights, (Tensor A, Tensor B) Pair);

/// Weights and a time constant: the weights train, the time constant is frozen or has its own rate.
public sealed record Cell(Tensor W, Tensor TauMem);

/// Key paths from C#: the path strings of leaves, the per-leaf optimizers that select by them, and
/// the checkpoint names they give.
public class KeyPathTests
{
    private static Tensor S(double v) => Tensor.Scalar(v, DType.Float64);

    private static readonly Cell Start = new(F64(1, -2, 0.5), F64(0.01, 0.02));

    private static readonly Cell[] Gradients =
    [
        new(F64(0.1, -0.4, 2), F64(0.5, double.NaN)),
        new(F64(-0.3, 0.2, 1), F64(0.25, 1.5)),
        new(F64(0.7, 0, -1), F64(-0.5, 0.125)),
    ];

    private static List<OptimizerStep<T>> Run<T>(Optimizer optimizer, T start, IEnumerable<T> gradients)
    {
        var steps = new List<OptimizerStep<T>>();
        var p = start;
        var state = optimizer.Init(start);
        foreach (var g in gradients)
        {
            var step = optimizer.Step(p, g, state);
            steps.Add(step);
            (p, state) = (step.Parameters, step.State);
        }
        return steps;
    }

    [Fact]
    public void LeavesWithPathNamesPropertiesIndicesAndKeys()
    {
        var m = new Layered(
            new Dictionary<string, Population> { ["out"] = new(S(1), S(2)), ["in/put"] = new(S(3), S(4)) },
            [S(5), S(6)],
            (S(7), S(8)));
        var leaves = Pytree.LeavesWithPath(m);
        Assert.Equal(
            ["Hidden/out/TauMem", "Hidden/out/TauSyn", "Hidden/in%2Fput/TauMem", "Hidden/in%2Fput/TauSyn", "Weights/0", "Weights/1", "Pair/0", "Pair/1"],
            leaves.Select(l => l.Path));
        // The same order as Leaves, the very same tensors.
        var plain = Pytree.Leaves(m);
        Assert.Equal(plain.Count, leaves.Count);
        for (int i = 0; i < plain.Count; i++) Assert.Same(plain[i], leaves[i].Leaf);
        // A class implementing ITree: its children by index; a tensor alone: the empty path.
        Assert.Equal(["0", "1"], Pytree.LeavesWithPath(new Custom([S(1), S(2)])).Select(l => l.Path));
        Assert.Equal([""], Pytree.LeavesWithPath(S(1)).Select(l => l.Path));
    }

    [Fact]
    public void NetworkParametersAndOptimizerStateAddNoKeys()
    {
        var net = Network.Sequential(Network.Dense(4), Network.Lif(new LifParameters()), Network.Dense(2, bias: true));
        var parameters = net.Init(RandomKey.FromSeed(1), 3).Parameters;
        Assert.Equal(["0/W", "2/W", "2/b"], Pytree.LeavesWithPath(parameters).Select(l => l.Path));
        var state = Optimizers.Adam(0.01).Init(parameters);
        Assert.Equal(
            ["0/Mu/0/W", "0/Mu/2/W", "0/Mu/2/b", "0/Nu/0/W", "0/Nu/2/W", "0/Nu/2/b", "0/Count", "1/Count"],
            Pytree.LeavesWithPath(state).Select(l => l.Path));
    }

    [Fact]
    public void FlattenWithPathUnflattensAndMapWithPathSeesThePaths()
    {
        var flat = Pytree.FlattenWithPath(Start);
        Assert.Equal(["W", "TauMem"], flat.LeavesWithPath.Select(l => l.Path));
        Assert.Same(Start.TauMem, flat.Leaves[1]);
        var rebuilt = flat.Unflatten([S(1), S(2)]);
        Assert.Equal(2.0, rebuilt.TauMem.ToScalar());
        // Flatten computes the paths on demand.
        Assert.Equal(["W", "TauMem"], Pytree.Flatten(Start).LeavesWithPath.Select(l => l.Path));
        var scaled = Pytree.MapWithPath(Start, (path, t) => path == "TauMem" ? t * 1000.0 : t);
        Identical(Start.TauMem * 1000.0, scaled.TauMem);
        Assert.Same(Start.W, scaled.W);
    }

    [Fact]
    public void MaskedSetToZeroFreezesASubset()
    {
        var optimizer = Optimizers.Chain(
            Optimizers.Masked(p => p == "TauMem", Optimizers.SetToZero()),
            Optimizers.Masked(p => p != "TauMem", Optimizers.Adam(0.01)));
        var steps = Run(optimizer, Start, Gradients);
        // The NaN gradient of the frozen leaf does not leak: the time constant never moves.
        foreach (var s in steps) Identical(Start.TauMem, s.Parameters.TauMem);
        // The weights move exactly as under Adam alone.
        var alone = Run(Optimizers.Adam(0.01), Start.W, Gradients.Select(g => g.W));
        for (int k = 0; k < steps.Count; k++) Identical(alone[k].Parameters, steps[k].Parameters.W);
        Assert.NotEqual(Start.W.ToDoubleArray(), steps[^1].Parameters.W.ToDoubleArray());
        // The masked Adam keeps moments for W alone.
        Assert.Equal(["1/Mu/W", "1/Nu/W", "1/Count", "2/Count"], Pytree.LeavesWithPath(steps[^1].State).Select(l => l.Path));
    }

    [Fact]
    public void MultiTransformGivesEachLabelItsOwnLearningRate()
    {
        var optimizer = Optimizers.MultiTransform(
            p => p.EndsWith("TauMem") ? "tau" : "weights",
            new Dictionary<string, Optimizer> { ["weights"] = Optimizers.Sgd(0.1), ["tau"] = Optimizers.Sgd(1e-3) });
        var gradients = Gradients.Skip(1).ToArray();
        var steps = Run(optimizer, Start, gradients);
        // By hand: p ← p − lr · g with each subset's rate.
        var w = Start.W.ToDoubleArray();
        var tau = Start.TauMem.ToDoubleArray();
        for (int k = 0; k < gradients.Length; k++)
        {
            var gw = gradients[k].W.ToDoubleArray();
            var gt = gradients[k].TauMem.ToDoubleArray();
            for (int i = 0; i < w.Length; i++) w[i] -= 0.1 * gw[i];
            for (int i = 0; i < tau.Length; i++) tau[i] -= 1e-3 * gt[i];
            Close(w, steps[k].Parameters.W.ToDoubleArray(), 1e-15);
            Close(tau, steps[k].Parameters.TauMem.ToDoubleArray(), 1e-15);
        }
        Assert.Equal(["0/tau/0/Count", "0/weights/0/Count"], Pytree.LeavesWithPath(steps[^1].State).Select(l => l.Path));
    }

    [Fact]
    public void MultiTransformWithoutATransformationForALabelNamesTheLeaf()
    {
        var optimizer = Optimizers.MultiTransform(
            p => p == "TauMem" ? "tau" : "weights",
            new Dictionary<string, Optimizer> { ["weights"] = Optimizers.Sgd(0.1) });
        var e = Assert.Throws<ArgumentException>(() => optimizer.Init(Start));
        Assert.Contains("leaf 'TauMem'", e.Message);
        Assert.Contains("label 'tau'", e.Message);
    }

    [Fact]
    public void CheckpointArraysAreNamedByKeyPath()
    {
        var net = Network.Sequential(Network.Dense(4), Network.Lif(new LifParameters()), Network.Dense(2));
        var parameters = net.Init(RandomKey.FromSeed(2), 3).Parameters;
        var optimizer = Optimizers.Adam(0.01);
        var path = Path.Combine(Path.GetTempPath(), $"snnfunc-cs-paths-{Guid.NewGuid():N}.npz");
        try
        {
            Trainer.SaveCheckpoint(path, parameters, optimizer.Init(parameters), 1);
            var arrays = TensorFiles.LoadNpz(path);
            Assert.Equal(
                new[] { "epochs_done", "params/0/W", "params/2/W", "opt/0/Mu/0/W", "opt/0/Mu/2/W", "opt/0/Nu/0/W", "opt/0/Nu/2/W", "opt/0/Count", "opt/1/Count" }.Order(),
                arrays.Keys.Order());
            Identical(parameters[2]["W"], arrays["params/2/W"]);
            // Loading into parameters of another network names the missing array.
            var other = Network.Sequential(Network.Dense(4), Network.Dense(2)).Init(RandomKey.FromSeed(2), 3).Parameters;
            var e = Assert.Throws<InvalidDataException>(() => Trainer.LoadCheckpoint(path, other, optimizer.Init(other)));
            Assert.Contains("'params/1/W'", e.Message);
        }
        finally { File.Delete(path); }
    }
}
