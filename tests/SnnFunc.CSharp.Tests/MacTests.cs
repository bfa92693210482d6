namespace SnnFunc.CSharp.Tests;

/// Mac, the facade of the chip's matrix mode: the product is hxtorch's arithmetic (checked against a
/// computation written here from bss2.md 3.4), its gradient the straight-through surrogate's, the
/// ideal mode the closed form, and bad input a named error.
public class MacTests
{
    private static (Tensor X, Tensor W, double[] Xs, double[] Ws) Operands(int b, int k, int n)
    {
        var xs = Enumerable.Range(0, b * k).Select(i => (double)((i * 7919) % 32)).ToArray();
        var ws = Enumerable.Range(0, k * n).Select(i => (double)((i * 104729) % 127 - 63)).ToArray();
        return (Tensor.FromArray(xs, b, k), Tensor.FromArray(ws, k, n), xs, ws);
    }

    [Fact]
    public void WithoutNoiseTheProductIsHxtorchsArithmetic()
    {
        // K = 300: chunks of 128, 128 and 44 rows, each floored and clamped to int8, the sum clamped once.
        const int B = 3, K = 300, N = 5;
        var (x, w, xs, ws) = Operands(B, K, N);
        var options = new MacOptions { NoiseStd = 0, Gain = 0.001 };
        var y = Mac.MatMul(x, w, options).ToDoubleArray();
        var scale = (float)(1 * 0.001);
        for (var i = 0; i < B; i++)
            for (var j = 0; j < N; j++)
            {
                long total = 0;
                for (var k0 = 0; k0 < K; k0 += 128)
                {
                    long s = 0;
                    for (var r = k0; r < Math.Min(K, k0 + 128); r++) s += (long)xs[i * K + r] * (long)ws[r * N + j];
                    total += (long)Math.Clamp(Math.Floor((float)s * scale), -128, 127);
                }
                Assert.Equal(Math.Clamp(total, -128, 127), y[i * N + j]);
            }
    }

    [Fact]
    public void TheGradientIsTheStraightThroughSurrogates()
    {
        var (x, w, _, _) = Operands(2, 20, 4);
        var options = new MacOptions { NumSends = 3, Key = RandomKey.FromSeed(5) };
        var g = Autodiff.Grad((Tensor v) => Mac.MatMul(x, v, options).Sum(), w).ToDoubleArray();
        var scale = (double)(float)(3 * 0.002);
        var xs = x.ToDoubleArray();
        for (var r = 0; r < 20; r++)
            for (var j = 0; j < 4; j++)
                Assert.Equal((xs[r] + xs[20 + r]) * scale, g[r * 4 + j], 12);
    }

    [Fact]
    public void TheIdealModeIsTheClosedFormAndTheLayersFollowIt()
    {
        var (x, w, _, _) = Operands(2, 10, 3);
        var ideal = new MacOptions { Ideal = true };
        var scale = (double)(float)0.002;
        TestUtil.Close((x.MatMul(w) * scale).ToDoubleArray(), Mac.MatMul(x * 1.3, w, ideal).ToDoubleArray().Select(v => v / 1.3).ToArray(), 1e-9);
        var h = Tensor.FromArray(new[] { -3.7, 0.5, 9.9, 200.0 }, 1, 4);
        Assert.Equal(new[] { 0.0, 0.25, 4.95, 100.0 }, Mac.ConvertingRelu(h, 1, ideal).ToDoubleArray());
        Assert.Equal(new[] { 0.0, 0.0, 4.0, 31.0 }, Mac.ConvertingRelu(h, 1).ToDoubleArray());
    }

    [Fact]
    public void LayersConvolutionsAndTheAccountHaveTheirShapes()
    {
        var x = Tensor.FromArray(Enumerable.Range(0, 2 * 28 * 28).Select(i => (double)(i % 32)).ToArray(), 2, 1, 28, 28);
        var w = Tensor.FromArray(Enumerable.Range(0, 4 * 49).Select(i => (double)(i % 21 - 10)).ToArray(), 4, 1, 7, 7);
        var init = Mac.InitScales(49);
        Assert.Equal(10, init.NumSends);   // hxtorch: ceil(2 · √2 / 0.002 / 7 / 21)
        var options = new MacOptions { NumSends = init.NumSends, NoiseStd = 0 };
        var y = Mac.Conv2d(x, w, null, options, stride: 3);
        Assert.Equal(new[] { 2, 4, 8, 8 }, y.Shape);
        var patches = Mac.Conv2dPatches(x, 7, stride: 3);
        Assert.Equal(new[] { 128, 49 }, patches.Shape);
        var seconds = Mac.PassSeconds(patches, 4, options);
        Assert.Equal(128, seconds.Count);
        Assert.All(seconds, s => Assert.InRange(s, 1.7e-6, 1.7e-6 + 49 * 10 * 40e-9 + 1e-12));
        TestUtil.Close(seconds.Select(s => s * 192e-6 / 276e-6).ToArray(), Mac.PassJoules(patches, 4, options), 1e-15);
        var dense = Mac.Linear(Tensor.Ones([3, 8]), Tensor.Ones([8, 2]), null, options, avg: 5);
        Assert.Equal(new[] { 3, 2 }, dense.Shape);
    }

    [Fact]
    public void AnInputOutOfRangeIsANamedError()
    {
        var (x, w, _, _) = Operands(2, 10, 3);
        var e = Assert.ThrowsAny<ArgumentException>(() => Mac.MatMul(x + 40.0, w));
        Assert.Contains("input", e.Message);
        Assert.Contains("0..31", e.Message);
    }
}
