using SnnFunc; using SnnFunc.CSharp;

namespace SnnFunc.CSharp.Tests;

public class DesignExampleTests
{
    /// The C# example of design.md, verbatim (only `xs` — left undefined there — is defined first,
    /// as in the F# example: `Tensor.ones [| 5; 3 |]`).
    [Fact]
    public void DesignExampleCompilesAndRunsAsWritten()
    {
        var xs = Tensor.Ones(5, 3);
        // ---- design.md, C# facade, verbatim ----
var x = Tensor.FromArray(new float[] { 1, 2, 3 }, 3);
Func<Tensor, Tensor> f = t => (t.Sin() * t).Sum();
Tensor g = Autodiff.Grad(f)(x);
var vg = Autodiff.ValueAndGrad(f, x);                 // vg.Value, vg.Gradient
var jv = Autodiff.Jvp(f, x, Tensor.OnesLike(x));      // jv.Value, jv.Tangent
Func<Tensor, Tensor> perRow = Autodiff.Vmap(f);
var s = Autodiff.Scan((c, xt) => new ScanStep<Tensor>(c * 0.9f + xt, c), Tensor.Zeros(3), xs);
// s.Carry, s.Outputs
float[] data = g.ToArray();
        // ---- end of the example ----

        double[] v = [1, 2, 3];
        var expectedGrad = v.Select(u => Math.Sin(u) + u * Math.Cos(u)).ToArray();
        TestUtil.Close(expectedGrad, data.Select(d => (double)d).ToArray(), 1e-6);
        Assert.Equal(v.Sum(u => Math.Sin(u) * u), vg.Value.ToScalar(), 5);
        TestUtil.Close(expectedGrad, vg.Gradient.ToDoubleArray(), 1e-6);
        Assert.Equal(expectedGrad.Sum(), jv.Tangent.ToScalar(), 5);
        Assert.Equal(vg.Value.ToScalar(), jv.Value.ToScalar(), 6);

        var rows = perRow(Tensor.FromArray(Enumerable.Range(0, 12).Select(i => (float)i).ToArray(), 4, 3));
        Assert.Equal(new[] { 4 }, rows.Shape);
        for (int r = 0; r < 4; r++)
            Assert.Equal(Enumerable.Range(3 * r, 3).Sum(u => Math.Sin(u) * u), rows.ToDoubleArray()[r], 4);

        // c_t = 0.9 c_{t-1} + 1 from 0; outputs are the carries before each step.
        double carry = 0;
        var outs = new List<double>();
        for (int t = 0; t < 5; t++) { outs.Add(carry); carry = carry * 0.9 + 1; }
        TestUtil.Close(new[] { carry, carry, carry }, s.Carry.ToDoubleArray(), 1e-6);
        Assert.Equal(new[] { 5, 3 }, s.Outputs.Shape);
        TestUtil.Close(outs.SelectMany(o => new[] { o, o, o }).ToArray(), s.Outputs.ToDoubleArray(), 1e-6);
    }
}
