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

    /// The same leaves under the same key paths, bitwise.
    public static void SameLeaves<TA, TB>(TA expected, TB actual)
    {
        var a = Pytree.LeavesWithPath(expected);
        var b = Pytree.LeavesWithPath(actual);
        Assert.NotEmpty(a);
        Assert.Equal(a.Select(l => l.Path), b.Select(l => l.Path));
        for (int i = 0; i < a.Count; i++) Identical(a[i].Leaf, b[i].Leaf);
    }

    /// Graph runs of the core and the facade: observables (and which are null), final states, bitwise.
    public static void SameRun(RunResult fs, GraphRunResult cs)
    {
        Assert.Equal(fs.Observed.Keys.ToArray(), cs.Observed.Keys.OrderBy(k => k, StringComparer.Ordinal).ToArray());
        foreach (var kv in fs.Observed)
        {
            var o = cs[kv.Key];
            Assert.Equal(kv.Value.Spikes is null, o.Spikes is null);
            Assert.Equal(kv.Value.Membrane is null, o.Membrane is null);
            Assert.Equal(kv.Value.Current is null, o.Current is null);
            Assert.Equal(kv.Value.Output is null, o.Output is null);
        }
        SameLeaves(fs, cs);
        SameLeaves(fs.Final, cs.Final);
    }

    /// Bitwise equality of the values (same computation on both sides).
    public static void Identical(Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.Shape, actual.Shape);
        Assert.Equal(expected.DType, actual.DType);
        Assert.Equal(expected.ToDoubleArray(), actual.ToDoubleArray());
    }
}
