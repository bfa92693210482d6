namespace SnnFunc.CSharp.Tests;

internal static class TestUtil
{
    public static Tensor F64(params double[] values) => Tensor.FromArray(values, values.Length);

    public static void Close(IReadOnlyList<double> expected, IReadOnlyList<double> actual, double tol = 1e-9)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol * (1 + Math.Abs(expected[i])),
                $"element {i}: expected {expected[i]}, got {actual[i]}");
    }

    public static void Close(Tensor expected, Tensor actual, double tol = 1e-9)
    {
        Assert.Equal(expected.Shape, actual.Shape);
        Close(expected.ToDoubleArray(), actual.ToDoubleArray(), tol);
    }

    /// Bitwise equality of the values (same computation on both sides).
    public static void Identical(Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.Shape, actual.Shape);
        Assert.Equal(expected.DType, actual.DType);
        Assert.Equal(expected.ToDoubleArray(), actual.ToDoubleArray());
    }
}
