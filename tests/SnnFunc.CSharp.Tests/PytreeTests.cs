using System.Collections.ObjectModel;
using static SnnFunc.CSharp.Tests.TestUtil;

namespace SnnFunc.CSharp.Tests;

/// A positional record.
public sealed record Mlp(Tensor W1, Tensor W2);

/// A record with a nested record, a non-tensor value and a list.
public sealed record Model(Mlp Body, Tensor Bias, double Scale, string Name, IReadOnlyList<Tensor> Extra);

/// An immutable class whose constructor parameters match its properties.
public sealed class DenseParams
{
    public DenseParams(Tensor w, Tensor b) { W = w; B = b; }
    public Tensor W { get; }
    public Tensor B { get; }
}

/// A mutable class with a parameterless constructor and setters.
public sealed class MutableParams
{
    public Tensor? A { get; set; }
    public Tensor? B { get; set; }
}

/// A record with init-only properties (no positional constructor).
public sealed record InitOnly
{
    public required Tensor P { get; init; }
    public int Tag { get; init; }
}

/// A struct.
public readonly record struct Pair(Tensor Left, Tensor Right);

/// A class taking part through ITree.
public sealed class Custom : ITree
{
    public Custom(Tensor[] parts) => Parts = parts;
    public Tensor[] Parts { get; }
    public object[] Children => Parts.Cast<object>().ToArray();
    public object Rebuild(object[] children) => new Custom(children.Cast<Tensor>().ToArray());
}

/// A class whose tensor property is computed: nothing can rebuild it from the constructor.
public sealed class WithComputedTensor
{
    public WithComputedTensor(Tensor w) => W = w;
    public Tensor W { get; }
    public Tensor Twice => W * 2.0;
}

public class PytreeTests
{
    private static readonly Tensor A = Tensor.FromArray(new double[] { 1, -2, 3 }, 3);
    private static readonly Tensor B = Tensor.FromArray(new double[] { 0.5, 4 }, 2);

    /// sum(p1 · A) + sum(p2²): gradient (A, 2 p2).
    private static Tensor Loss(Tensor p1, Tensor p2) => (p1 * A).Sum() + p2.Square().Sum();

    private static readonly Tensor P1 = Tensor.FromArray(new double[] { 0.1, 0.2, 0.3 }, 3);
    private static readonly Tensor P2 = Tensor.FromArray(new double[] { -1, 2 }, 2);

    private static void CheckGrad(Tensor g1, Tensor g2)
    {
        Close(A, g1, 0);
        Close(P2 * 2.0, g2, 0);
    }

    [Fact]
    public void PositionalRecord()
    {
        var r = Autodiff.ValueAndGrad((Mlp p) => Loss(p.W1, p.W2), new Mlp(P1, P2));
        Assert.IsType<Mlp>(r.Gradient);
        CheckGrad(r.Gradient.W1, r.Gradient.W2);
        Assert.Equal(Loss(P1, P2).ToScalar(), r.Value.ToScalar());
    }

    [Fact]
    public void NestedRecordWithStaticsAndList()
    {
        var m = new Model(new Mlp(P1, P2), Tensor.Scalar(2.0, DType.Float64), 3.0, "net", [Tensor.Full([2], 1.0, DType.Float64)]);
        var g = Autodiff.Grad((Model p) => Loss(p.Body.W1, p.Body.W2) * p.Scale + p.Bias * 5.0 + p.Extra[0].Sum())(m);
        Close(A * 3.0, g.Body.W1, 0);
        Close(P2 * 6.0, g.Body.W2, 0);
        Assert.Equal(5.0, g.Bias.ToScalar());
        Assert.Equal(3.0, g.Scale);
        Assert.Equal("net", g.Name);
        Assert.Equal(new float[] { 1, 1 }, g.Extra[0].ToArray());
        Assert.Equal(4, Pytree.Leaves(m).Count);
    }

    [Fact]
    public void ClassWithMatchingConstructor()
    {
        var g = Autodiff.Grad((DenseParams p) => Loss(p.W, p.B))(new DenseParams(P1, P2));
        CheckGrad(g.W, g.B);
    }

    [Fact]
    public void ClassWithSetters()
    {
        var g = Autodiff.Grad((MutableParams p) => Loss(p.A!, p.B!))(new MutableParams { A = P1, B = P2 });
        CheckGrad(g.A!, g.B!);
    }

    [Fact]
    public void InitOnlyRecordAndStruct()
    {
        var g = Autodiff.Grad((InitOnly p) => Loss(p.P, P2))(new InitOnly { P = P1, Tag = 7 });
        Close(A, g.P, 0);
        Assert.Equal(7, g.Tag);
        var s = Autodiff.Grad((Pair p) => Loss(p.Left, p.Right))(new Pair(P1, P2));
        CheckGrad(s.Left, s.Right);
    }

    [Fact]
    public void Dictionaries()
    {
        var d = new Dictionary<string, Tensor> { ["w"] = P1, ["b"] = P2 };
        var g = Autodiff.Grad((Dictionary<string, Tensor> p) => Loss(p["w"], p["b"]))(d);
        CheckGrad(g["w"], g["b"]);
        IReadOnlyDictionary<string, Tensor> ro = d;
        var g2 = Autodiff.ValueAndGrad(p => Loss(p["w"], p["b"]), ro).Gradient;
        CheckGrad(g2["w"], g2["b"]);
        var rod = new ReadOnlyDictionary<string, Tensor>(d);
        var g3 = Autodiff.Grad((ReadOnlyDictionary<string, Tensor> p) => Loss(p["w"], p["b"]))(rod);
        CheckGrad(g3["w"], g3["b"]);
    }

    [Fact]
    public void ArraysListsTuplesAndITree()
    {
        var g = Autodiff.Grad((Tensor[] p) => Loss(p[0], p[1]))([P1, P2]);
        CheckGrad(g[0], g[1]);
        var l = Autodiff.Grad((List<Tensor> p) => Loss(p[0], p[1]))([P1, P2]);
        CheckGrad(l[0], l[1]);
        var rc = Autodiff.Grad((ReadOnlyCollection<Tensor> p) => Loss(p[0], p[1]))(new ReadOnlyCollection<Tensor>([P1, P2]));
        CheckGrad(rc[0], rc[1]);
        var ce = Autodiff.Grad((IReadOnlyList<Tensor> p) => Loss(p[0], p[1]))([P1, P2]);
        CheckGrad(ce[0], ce[1]);
        var vt = Autodiff.Grad(((Tensor W, Tensor B) p) => Loss(p.W, p.B))((P1, P2));
        CheckGrad(vt.W, vt.B);
        var t = Autodiff.Grad((Tuple<Tensor, Tensor> p) => Loss(p.Item1, p.Item2))(Tuple.Create(P1, P2));
        CheckGrad(t.Item1, t.Item2);
        var c = Autodiff.Grad((Custom p) => Loss(p.Parts[0], p.Parts[1]))(new Custom([P1, P2]));
        CheckGrad(c.Parts[0], c.Parts[1]);
    }

    [Fact]
    public void ForwardModeAndVmapOverRecords()
    {
        var jv = Autodiff.Jvp((Mlp p) => Loss(p.W1, p.W2), new Mlp(P1, P2), new Mlp(Tensor.OnesLike(P1), Tensor.ZerosLike(P2)));
        Assert.Equal(A.Sum().ToScalar(), jv.Tangent.ToScalar(), 12);
        var batch = new Mlp(Tensor.Stack([P1, P1 * 2.0]), Tensor.Stack([P2, P2]));
        var perExample = Autodiff.Vmap((Mlp p) => Loss(p.W1, p.W2))(batch);
        Close(Tensor.FromArray(new[] { Loss(P1, P2).ToScalar(), Loss(P1 * 2.0, P2).ToScalar() }, 2), perExample, 1e-12);
    }

    [Fact]
    public void MapFlattenUnflatten()
    {
        var m = new Mlp(P1, P2);
        var doubled = Pytree.Map(m, t => t * 2.0);
        Close(P1 * 2.0, doubled.W1, 0);
        var sum = Pytree.Map(m, doubled, (a, b) => a + b);
        Close(P2 * 3.0, sum.W2, 0);
        var flat = Pytree.Flatten(m);
        Assert.Equal(2, flat.Leaves.Count);
        var rebuilt = flat.Unflatten([B, A]);
        Assert.Same(B, rebuilt.W1);
        Assert.Contains("Mlp", flat.Structure);
        Assert.True(flat.HasSameStructure(Pytree.Flatten(doubled)));
    }

    [Fact]
    public void MismatchedStructuresAreReported()
    {
        var e = Assert.Throws<ArgumentException>(() =>
            Pytree.Map(new Dictionary<string, Tensor> { ["a"] = P1 }, new Dictionary<string, Tensor> { ["b"] = P1 }, (x, y) => x + y));
        Assert.Contains("structure", e.Message);
    }

    [Fact]
    public void GradientThroughTheFacadesBatchRecord()
    {
        // Batch has a computed Count besides its positional (X, Labels): it used to fall back to a
        // static value, so the gradient came back as the input unchanged.
        var batch = new Batch(P1, [0, 2, 1]);
        var g = Autodiff.Grad((Batch b) => (b.X * b.X).Sum() * b.Count)(batch);
        Close(P1 * 6.0, g.X, 0);
        Assert.Equal(new[] { 0, 2, 1 }, g.Labels);
        Assert.Equal(3, g.Count);
        Assert.Single(Pytree.Leaves(batch));
    }

    [Fact]
    public void AComputedTensorPropertyIsAClearError()
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => Autodiff.Grad((WithComputedTensor p) => p.W.Sum())(new WithComputedTensor(P1)));
        Assert.Contains("WithComputedTensor", e.Message);
        Assert.Contains("Twice", e.Message);
    }
}
