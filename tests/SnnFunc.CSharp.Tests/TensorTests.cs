namespace SnnFunc.CSharp.Tests;

public class TensorTests
{
    [Fact]
    public void ShapeIsAReadOnlyList()
    {
        var t = Tensor.Zeros(2, 3, 4);
        IReadOnlyList<int> shape = t.Shape;
        Assert.Equal(new[] { 2, 3, 4 }, shape);
        Assert.Equal(new[] { 2, 3, 4 }, t.Dimensions);
    }

    [Fact]
    public void FromArrayWithoutAShapeIsAVector()
    {
        var v = Tensor.FromArray(new float[] { 1, 2, 3 });
        Assert.Equal(new[] { 3 }, v.Shape);
        Assert.Equal(new float[] { 1, 2, 3 }, v.ToArray());
        Assert.Equal(new[] { 2 }, Tensor.FromArray(new double[] { 1, 2 }).Shape);
        Assert.Empty(Tensor.FromArray(new double[] { 5 }, []).Shape);
        Assert.ThrowsAny<ArgumentException>(() => Tensor.FromArray(new double[] { 1, 2, 3 }, []));
    }

    [Fact]
    public void OperatorsWithTensorsAndScalars()
    {
        var a = Tensor.FromArray(new float[] { 1, 2, 3 }, 3);
        var b = Tensor.FromArray(new float[] { 4, 5, 6 }, 3);
        Assert.Equal(new float[] { 5, 7, 9 }, (a + b).ToArray());
        Assert.Equal(new float[] { -3, -3, -3 }, (a - b).ToArray());
        Assert.Equal(new float[] { 4, 10, 18 }, (a * b).ToArray());
        Assert.Equal(new float[] { 2, 4, 6 }, (a * 2).ToArray());
        Assert.Equal(new float[] { 0.5f, 1, 1.5f }, (a / 2.0).ToArray());
        Assert.Equal(new float[] { 9, 8, 7 }, (10f - a).ToArray());
        Assert.Equal(new float[] { -1, -2, -3 }, (-a).ToArray());
        Assert.Equal(new float[] { 32 }, new[] { a.MatMul(b).ToArray()[0] });
    }

    [Fact]
    public void ExtensionsForFSharpOptionalArguments()
    {
        var m = Tensor.FromArray(new double[,] { { 1, 2, 3 }, { 4, 5, 6 } });
        Assert.Equal(new[] { 2, 3 }, m.Shape);
        Assert.Equal(new[] { 2, 1 }, m.Sum(1, keepDims: true).Shape);
        Assert.Equal(new double[] { 6, 15 }, m.Sum(1).ToDoubleArray());
        Assert.Equal(new double[] { 2.5, 3.5, 4.5 }, m.Mean(0).ToDoubleArray());
        Assert.Equal(new double[] { 3, 6 }, m.Max(1).ToDoubleArray());
        Assert.Equal(new double[] { 1, 4 }, m.Min(-1).ToDoubleArray());
        Assert.Equal(21.0, m.SumAxes([0, 1]).ToScalar());
        TestUtil.Close(new double[] { 1, 1 }, m.Softmax(1).Sum(1).ToDoubleArray(), 1e-12);
        TestUtil.Close(new double[] { 1, 1 }, m.Softmax().Sum(1).ToDoubleArray(), 1e-12);
        TestUtil.Close(m.LogSoftmax(1).Exp(), m.Softmax(1), 1e-12);
        Assert.Equal(Math.Log(Math.Exp(1) + Math.Exp(2) + Math.Exp(3)), m.LogSumExp(1).ToDoubleArray()[0], 12);
        Assert.Equal(new[] { 2, 6 }, Tensor.Concat([m, m], axis: 1).Shape);
        Assert.Equal(new[] { 4, 3 }, Tensor.Concat([m, m]).Shape);
        Assert.Equal(new[] { 2, 2, 3 }, Tensor.Stack([m, m]).Shape);
        Assert.Equal(new double[] { 4, 5, 6 }, m.Gather(0, [1]).ToDoubleArray());
        Assert.Equal(DType.Float64, Tensor.Full([2], 0.5, DType.Float64).DType);
        Assert.Equal(new float[] { 0.5f, 0.5f }, Tensor.Full([2], 0.5).ToArray());
        Assert.Equal(DType.Float32, Tensor.Scalar(1.5).DType);
        Assert.Equal(new float[] { 0, 1, 2 }, Tensor.Arange(3).ToArray());
        Assert.Equal(new double[] { 0, 0.5, 1 }, Tensor.Linspace(0, 1, 3, DType.Float64).ToDoubleArray());
        Assert.Equal(new float[] { 1, 0, 0, 1 }, Tensor.Eye(2).ToArray());
        Assert.Equal(new float[] { 0, 1, 1, 0 }, Tensor.OneHot([1, 0], 2).ToArray());
    }

    [Fact]
    public void ToStringIsReadable()
    {
        var s = Tensor.FromArray(new float[] { 1, 2.5f, 3 }, 3).ToString();
        Assert.Equal("tensor([1, 2.5, 3], shape=[3], dtype=float32)", s);
    }

    [Fact]
    public void RandomKeysAreDeterministic()
    {
        var k = RandomKey.FromSeed(42);
        Assert.Equal(k.Normal([3]).ToArray(), RandomKey.FromSeed(42).Normal([3]).ToArray());
        var pair = k.Split();
        Assert.NotEqual(pair.First.Normal([3]).ToArray(), pair.Second.Normal([3]).ToArray());
        Assert.Equal(pair.First, k.Split(2)[0]);
        Assert.Equal(k.FoldIn(1), RandomKey.FromSeed(42).FoldIn(1));
        var u = k.Uniform([1000], -1, 1).ToArray();
        Assert.All(u, x => Assert.InRange(x, -1f, 1f));
    }

    [Fact]
    public void Int32DataAndIndexingPrimitives()
    {
        var idx = Tensor.FromArray(new[] { 2, 0, 2 });
        Assert.Equal(DType.Int32, idx.DType);
        Assert.Equal(new[] { 2, 0, 2 }, idx.ToInt32Array());
        var x = Tensor.FromArray(new double[] { 10, 20, 30 });
        Assert.Equal(new double[] { 30, 10, 30 }, x.Gather(0, idx).ToDoubleArray());
        Assert.Equal(new double[] { 1, 0, 2 }, Tensor.Ones(3).ScatterAdd(0, idx, 3).ToDoubleArray());
        Assert.Equal(new double[] { 10, 30, 60 }, x.Cumsum(0).ToDoubleArray());
        Assert.Equal(new[] { 2, 1, 0 }, x.Argsort(descending: true).ToInt32Array());
        Assert.Equal(new double[] { 30, 20, 10 }, x.Sort(descending: true).ToDoubleArray());
        Assert.Equal(new[] { 1, 2 }, x.SearchSorted(Tensor.FromArray(new double[] { 15, 20 }), right: true).ToInt32Array());
        Assert.Equal(DType.Int32, x.ArgMax(0).DType);
        // Gradients flow to the float data, not to the integer indices.
        var g = Autodiff.Grad((Tensor t) => t.Gather(0, idx).Sum())(x);
        Assert.Equal(new double[] { 1, 0, 2 }, g.ToDoubleArray());
    }
}
