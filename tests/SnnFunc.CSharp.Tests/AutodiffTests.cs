using static SnnFunc.CSharp.Tests.TestUtil;

namespace SnnFunc.CSharp.Tests;

public sealed record WeightCarry(Tensor C, Tensor W);

public class AutodiffTests
{
    private static readonly double[] X = [0.3, -1.2, 2.0, 0.7];
    private static Tensor Sx => F64(X);
    private static Tensor SinTimesX(Tensor t) => (t.Sin() * t).Sum();

    [Fact]
    public void GradOfSumSinXTimesXIsSinXPlusXCosX()
    {
        var g = Autodiff.Grad(SinTimesX)(Sx);
        Close(X.Select(x => Math.Sin(x) + x * Math.Cos(x)).ToArray(), g.ToDoubleArray(), 1e-12);
        Close(g, Autodiff.Grad<Tensor>(SinTimesX, Sx), 0);
    }

    [Fact]
    public void ValueAndGradGivesBoth()
    {
        var r = Autodiff.ValueAndGrad(SinTimesX, Sx);
        Assert.Equal(X.Sum(x => Math.Sin(x) * x), r.Value.ToScalar(), 12);
        Close(X.Select(x => Math.Sin(x) + x * Math.Cos(x)).ToArray(), r.Gradient.ToDoubleArray(), 1e-12);
        var vg = Autodiff.ValueAndGrad<Tensor>(SinTimesX);
        Close(r.Gradient, vg(Sx).Gradient, 0);
    }

    [Fact]
    public void HessianOfSumSinXTimesXIsDiagonal()
    {
        var h = Autodiff.Hessian(SinTimesX, Sx);
        Assert.Equal(new[] { 4, 4 }, h.Shape);
        var a = h.ToDoubleArray();
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
                Assert.Equal(i == j ? 2 * Math.Cos(X[i]) - X[i] * Math.Sin(X[i]) : 0.0, a[i * 4 + j], 12);
        Close(h, Autodiff.Hessian(SinTimesX)(Sx), 0);
    }

    [Fact]
    public void HessianOfQuadraticFormIsSymmetricPart()
    {
        var a = Tensor.FromArray(new double[,] { { 1, 2 }, { 3, 4 } });
        var h = Autodiff.Hessian(x => x.MatMul(a.MatMul(x)), F64(0.5, -0.25));
        Close(new double[] { 2, 5, 5, 8 }, h.ToDoubleArray(), 1e-12);
    }

    [Fact]
    public void HvpMatchesHessianTimesVector()
    {
        var v = F64(1, -1, 0.5, 2);
        var hv = Autodiff.Hvp<Tensor>(SinTimesX, Sx, v);
        Close(Autodiff.Hessian(SinTimesX, Sx).MatMul(v), hv, 1e-12);
    }

    [Fact]
    public void JvpIsTheDirectionalDerivative()
    {
        var v = F64(1, 2, -1, 0.5);
        var r = Autodiff.Jvp<Tensor, Tensor>(SinTimesX, Sx, v);
        var expected = X.Select((x, i) => (Math.Sin(x) + x * Math.Cos(x)) * v.ToDoubleArray()[i]).Sum();
        Assert.Equal(expected, r.Tangent.ToScalar(), 12);
        Assert.Equal(X.Sum(x => Math.Sin(x) * x), r.Value.ToScalar(), 12);
    }

    [Fact]
    public void VjpPullbackAndLinearizeAgreeWithClosedForms()
    {
        Func<Tensor, Tensor> f = t => t.Square() * 3.0;
        var r = Autodiff.Vjp(f, Sx);
        var u = F64(1, 0.5, -2, 3);
        Close(X.Select((x, i) => 6 * x * u.ToDoubleArray()[i]).ToArray(), r.Pullback(u).ToDoubleArray(), 1e-12);
        Close(f(Sx), r.Value, 0);
        var lin = Autodiff.Linearize(f, Sx);
        Close(Autodiff.Jvp(f, Sx, u).Tangent, lin.Pushforward(u), 1e-12);
    }

    [Fact]
    public void JacobiansForwardAndReverseAgree()
    {
        Func<Tensor, Tensor> f = t => t.Sin() * t.Sum();
        var rev = Autodiff.Jacobian(f, Sx);
        var fwd = Autodiff.Jacobian(f, Sx, JacobianMode.Forward);
        Close(rev, fwd, 1e-12);
        var s = X.Sum();
        var j = rev.ToDoubleArray();
        for (int i = 0; i < 4; i++)
            for (int k = 0; k < 4; k++)
                Assert.Equal((i == k ? Math.Cos(X[i]) * s : 0) + Math.Sin(X[i]), j[i * 4 + k], 12);
    }

    [Fact]
    public void NestedGradientsHaveNoPerturbationConfusion()
    {
        // d/dx [x · d/dy (x y)] at y = anything = d/dx x² = 2x
        Func<Tensor, Tensor> outer = x => (x * Autodiff.Grad(y => (x * y).Sum())(F64(3.0))).Sum();
        Assert.Equal(2 * 1.5, Autodiff.Grad(outer)(F64(1.5)).ToScalar(), 12);
        // third derivative of x⁴ = 24x
        Func<Tensor, Tensor> quartic = x => x.Pow(4.0).Sum();
        Func<Tensor, Tensor> d1 = x => Autodiff.Grad(quartic)(x).Sum();
        Func<Tensor, Tensor> d2 = x => Autodiff.Grad(d1)(x).Sum();
        Assert.Equal(24 * 0.7, Autodiff.Grad(d2)(F64(0.7)).ToScalar(), 10);
    }

    [Fact]
    public void VmapMatchesALoop()
    {
        var w = Tensor.FromArray(new double[,] { { 1, -1 }, { 0.5, 2 }, { 0, 1 } });
        Func<Tensor, Tensor> f = row => row.MatMul(w).Tanh();
        var batch = Tensor.FromArray(new double[,] { { 1, 2, 3 }, { -1, 0, 1 }, { 0.5, 0.5, 0.5 }, { 2, -2, 0 } });
        var mapped = Autodiff.Vmap(f)(batch);
        var loop = Tensor.Stack(Enumerable.Range(0, 4).Select(i => f(batch.Narrow(0, i, 1).Reshape(3))).ToArray());
        Close(loop, mapped, 1e-12);
        var byColumn = Autodiff.Vmap(f, inAxis: 1, outAxis: 1)(batch.Transpose());
        Close(loop.Transpose(), byColumn, 1e-12);
        // A shared (unmapped) leaf via in-axes over a tuple.
        var pair = Autodiff.Vmap<(Tensor Row, Tensor W), Tensor>(p => p.Row.MatMul(p.W), [0, null])((batch, w));
        Close(batch.MatMul(w), pair, 1e-12);
    }

    [Fact]
    public void ScanCheckpointedAndReversedAgreeWithPlain()
    {
        var xs = Tensor.FromArray(Enumerable.Range(0, 24).Select(i => Math.Sin(i)).ToArray(), 8, 3);
        // The weight travels in the carry (a C# record): checkpointed segments are recomputed from
        // their explicit inputs. (A weight captured by the step's closure works without
        // checkpointing — see `closed` below — but not with it: a core limitation, see the report.)
        Func<Tensor, Tensor> loss(int k) => w =>
        {
            var s = Autodiff.Scan((WeightCarry c, Tensor xt) =>
                    new ScanStep<WeightCarry>(new WeightCarry((c.C * c.W + xt).Tanh(), c.W), c.C * c.C),
                new WeightCarry(Tensor.ZerosLike(w), w), xs, checkpointEvery: k);
            return s.Carry.C.Sum() + s.Outputs.Sum();
        };
        Func<Tensor, Tensor> closed = w =>
        {
            var s = Autodiff.Scan((c, xt) => new ScanStep<Tensor>((c * w + xt).Tanh(), c * c), Tensor.ZerosLike(w), xs);
            return s.Carry.Sum() + s.Outputs.Sum();
        };
        var w0 = F64(0.5, -0.3, 0.9);
        var plain = Autodiff.ValueAndGrad(loss(0), w0);
        foreach (var k in new[] { 1, 3, 5 })
        {
            var ckpt = Autodiff.ValueAndGrad(loss(k), w0);
            Close(plain.Value, ckpt.Value, 1e-12);
            Close(plain.Gradient, ckpt.Gradient, 1e-12);
        }
        Close(plain.Gradient, Autodiff.Grad(closed)(w0), 1e-12);
        // Unrolled loop
        Func<Tensor, Tensor> unrolled = w =>
        {
            var c = Tensor.ZerosLike(w);
            var total = Tensor.Scalar(0.0, DType.Float64);
            for (int t = 0; t < 8; t++) { total = total + (c * c).Sum(); c = (c * w + xs.Narrow(0, t, 1).Reshape(3)).Tanh(); }
            return total + c.Sum();
        };
        Close(Autodiff.Grad(unrolled)(w0), plain.Gradient, 1e-12);
        // Reverse runs the steps backwards but keeps outputs in index order.
        var rev = Autodiff.Scan((c, xt) => new ScanStep<Tensor>(c + xt, c), Tensor.Zeros(1), Tensor.Arange(4).Reshape(4, 1), reverse: true);
        Assert.Equal(new float[] { 6, 5, 3, 0 }, rev.Outputs.ToArray());
        Assert.Equal(new float[] { 6 }, rev.Carry.ToArray());
    }

    [Fact]
    public void GenericScanWithPytreeInputsAndOutputs()
    {
        var xs = new Dictionary<string, Tensor> { ["a"] = Tensor.Ones(4, 2), ["b"] = Tensor.Arange(4).Reshape(4, 1) };
        var r = Autodiff.Scan((Tensor c, Dictionary<string, Tensor> x) =>
                new ScanStep<Tensor, (Tensor Sum, Tensor Twice)>(c + x["a"] * x["b"], (c.Sum(), c * 2)),
            Tensor.Zeros(2), xs);
        Assert.Equal(new float[] { 6, 6 }, r.Carry.ToArray());
        Assert.Equal(new float[] { 0, 0, 2, 6 }, r.Outputs.Sum.ToArray());
        Assert.Equal(new[] { 4, 2 }, r.Outputs.Twice.Shape);
    }

    [Fact]
    public void StopGradientBlocksDerivatives()
    {
        var g = Autodiff.Grad(x => (x * Autodiff.StopGradient(x)).Sum())(Sx);
        Close(X, g.ToDoubleArray(), 0);
    }

    [Fact]
    public void CustomJvpRuleIsUsedInBothModes()
    {
        // sin with a deliberately "wrong" rule 2·cos: proves the rule, not sin's own derivative, is used.
        var f = Autodiff.CustomJvp(x => x.Sin(), (x, dx) => new JvpResult<Tensor>(x.Sin(), dx * x.Cos() * 2.0));
        Close(Sx.Sin(), f(Sx), 0);
        Close(X.Select(x => 2 * Math.Cos(x)).ToArray(), Autodiff.Grad(x => f(x).Sum())(Sx).ToDoubleArray(), 1e-12);
        Close(X.Select(x => 2 * Math.Cos(x)).ToArray(), Autodiff.Jvp(f, Sx, Tensor.OnesLike(Sx)).Tangent.ToDoubleArray(), 1e-12);

        var many = Autodiff.CustomJvpMany(xs => [xs[0] * xs[1]],
            (p, t) => new JvpManyResult([p[0] * p[1]], [t[0]! * p[1] * 10.0]));
        var g = Autodiff.Grad(a => many([a, F64(3)])[0].Sum())(F64(2));
        Assert.Equal(30.0, g.ToScalar(), 12);
    }

    [Fact]
    public void CustomVjpRuleIsUsedInReverseMode()
    {
        var f = Autodiff.CustomVjp<Tensor>(x => x.Exp(),
            x => new VjpForward<Tensor>(x.Exp(), x),
            (x, ct) => ct * 5.0);
        Close(Sx.Exp(), f(Sx), 0);
        Close(X.Select(_ => 5.0).ToArray(), Autodiff.Grad(x => f(x).Sum())(Sx).ToDoubleArray(), 0);
    }

    [Fact]
    public void CheckpointGivesTheSameGradient()
    {
        Func<Tensor, Tensor> inner = x => (x.Sin() * x.Exp()).Tanh();
        var plain = Autodiff.Grad(x => inner(inner(x)).Sum())(Sx);
        var ck = Autodiff.Checkpoint(inner);
        Close(plain, Autodiff.Grad(x => ck(ck(x)).Sum())(Sx), 1e-12);
    }

    [Fact]
    public void ValueAndGradWithAuxPassesAuxThrough()
    {
        var r = Autodiff.ValueAndGradWithAux(
            (Tensor x) => new ValueWithAux<Tensor>((x * x).Sum(), x * 10.0), Sx);
        Assert.Equal(X.Sum(x => x * x), r.Value.ToScalar(), 12);
        Close(Sx * 10.0, r.Aux, 0);
        Close(X.Select(x => 2 * x).ToArray(), r.Gradient.ToDoubleArray(), 0);
    }

    [Fact]
    public void NonScalarGradIsAClearError()
    {
        var e = Assert.Throws<ArgumentException>(() => Autodiff.Grad(x => x.Sin())(Sx));
        Assert.Contains("scalar", e.Message);
    }
}
