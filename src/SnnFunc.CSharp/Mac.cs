using Microsoft.FSharp.Core;
using SnnFunc.Backends;
using SnnFunc.Backends.Bss2;
using FMac = SnnFunc.Backends.Bss2.Mac;

namespace SnnFunc.CSharp;

/// <summary>Settings of the chip's matrix (MAC) products (the core's <c>MacConfig</c>); the defaults are
/// hxtorch's mock: gain 0.002, one send, noise 2 LSB per 128-row partial sum, ideal columns.</summary>
public sealed record MacOptions
{
    /// <summary>Output LSB per unit of Σ x·w, in (0, 1].</summary>
    public double Gain { get; init; } = 0.002;

    /// <summary>How often the input vector is sent (each send integrates once more).</summary>
    public int NumSends { get; init; } = 1;

    /// <summary>Standard deviation of the noise on each 128-row partial sum, in output LSB; 0 turns it off.</summary>
    public double NoiseStd { get; init; } = 2.0;

    /// <summary>The key of the product's noise: derive a new one for every product (<see cref="RandomKey.FoldIn"/>).</summary>
    public RandomKey Key { get; init; } = RandomKey.FromSeed(0);

    /// <summary>The unquantised software network with the same parameters (scale · x @ w, no rounding,
    /// noise or clipping) instead of the chip's arithmetic.</summary>
    public bool Ideal { get; init; }

    /// <summary>Relative spread of the per-column gain (fixed-pattern noise); 0 for ideal columns.</summary>
    public double GainSpread { get; init; }

    /// <summary>The fraction of the columns that saturate early, at ±<see cref="EarlySaturationLevel"/>.</summary>
    public double EarlySaturationFraction { get; init; }

    /// <summary>Where the early-saturating columns clamp each partial sum (1..127).</summary>
    public int EarlySaturationLevel { get; init; } = 80;

    /// <summary>The chip instance whose fixed pattern is drawn (the same key, the same pattern).</summary>
    public RandomKey ChipKey { get; init; } = RandomKey.FromSeed(0);

    /// <summary>Hardware seconds of reset and readout per sequential run (an assumption: one CADC period).</summary>
    public double PassOverhead { get; init; } = Bss2Figures.cadcPeriod;

    /// <summary>Sequential runs one product may take; a larger product is an error.</summary>
    public int MaxRuns { get; init; } = 1024;

    internal MacConfig Core()
    {
        var pattern = GainSpread == 0 && EarlySaturationFraction == 0
            ? null
            : FSharpOption<MacFixedPattern>.Some(new MacFixedPattern(GainSpread, EarlySaturationFraction, EarlySaturationLevel, ChipKey.Key));
        return new MacConfig(Gain, NumSends, NoiseStd, Key.Key, Ideal ? MacMode.Ideal : MacMode.Emulated, pattern, PassOverhead, MaxRuns);
    }
}

/// <summary>hxtorch's initialisation of a layer (<see cref="Mac.InitScales"/>).</summary>
/// <param name="NumSends">The layer's num_sends.</param>
/// <param name="WeightStd">The standard deviation of its weights (before the ±63 clip).</param>
/// <param name="BiasBound">The bound of its uniform bias.</param>
public sealed record MacInit(int NumSends, double WeightStd, double BiasBound);

/// <summary>
/// The BrainScaleS-2 chip's matrix (MAC) mode (the core's <c>Bss2.Mac</c>): vector-matrix products with
/// hxtorch's mock arithmetic bit for bit (5-bit inputs 0..31, 6-bit weights ±63, int8 outputs), their
/// straight-through gradient (gain · num_sends · x @ w), and hxtorch's layers:
/// <code>
/// var mac = new MacOptions { Key = RandomKey.FromSeed(7) };
/// Tensor Hidden(Tensor w1) => Mac.ConvertingRelu(Mac.Linear(x, w1, null, mac), 1, mac);   // int8 -> 0..31
/// var g = Autodiff.Grad((Tensor w1) => Hidden(w1).Sum(), w1);                              // straight through
/// </code>
/// </summary>
public static class Mac
{
    private static MacConfig Core(MacOptions? options) => (options ?? new MacOptions()).Core();

    private static FSharpOption<Tensor>? Option(Tensor? t) => t is null ? null : FSharpOption<Tensor>.Some(t);

    /// <summary>The chip's product x @ w.</summary>
    /// <param name="x">[batch, K] or [K], values that round to 0..31.</param>
    /// <param name="w">[K, N], values that round to -63..63.</param>
    /// <param name="options">The product's settings; null for the defaults.</param>
    /// <returns>The int8 outputs [batch, N] (or [N]) in x's float type.</returns>
    /// <exception cref="ArgumentException">A value out of range (named with its position) or mismatched shapes.</exception>
    public static Tensor MatMul(Tensor x, Tensor w, MacOptions? options = null) => FMac.matmul(Core(options), x, w);

    /// <summary>A linear layer: the weights clamped to ±63, the bias through the int8 add (hxtorch's Linear);
    /// with <paramref name="avg"/> above 1 each output occupies that many columns, averaged.</summary>
    /// <param name="x">[batch, K] in 0..31.</param>
    /// <param name="w">[K, N].</param>
    /// <param name="bias">[N], or null.</param>
    /// <param name="options">The product's settings; null for the defaults.</param>
    /// <param name="avg">Columns per output.</param>
    /// <returns>[batch, N].</returns>
    public static Tensor Linear(Tensor x, Tensor w, Tensor? bias = null, MacOptions? options = null, int avg = 1) =>
        avg == 1 ? FMac.linear(Core(options), w, Option(bias), x) : FMac.linearAveraged(Core(options), avg, w, Option(bias), x);

    /// <summary>A 2-D convolution as one product over the patch matrix (hxtorch's Conv2d), the bias added in float.</summary>
    /// <param name="x">[N, C, H, W] in 0..31.</param>
    /// <param name="w">[C_out, C, kh, kw].</param>
    /// <param name="bias">[C_out], or null.</param>
    /// <param name="options">The product's settings; null for the defaults.</param>
    /// <param name="stride">The stride in both directions.</param>
    /// <param name="padding">Zero padding on each side.</param>
    /// <returns>[N, C_out, OutH, OutW].</returns>
    public static Tensor Conv2d(Tensor x, Tensor w, Tensor? bias = null, MacOptions? options = null, int stride = 1, int padding = 0) =>
        FMac.conv2d(Core(options), stride, stride, padding, padding, w, Option(bias), x);

    /// <summary>A 1-D convolution as one product over the patch matrix (hxtorch's Conv1d), the bias added in float.</summary>
    /// <param name="x">[N, C, L] in 0..31.</param>
    /// <param name="w">[C_out, C, k].</param>
    /// <param name="bias">[C_out], or null.</param>
    /// <param name="options">The product's settings; null for the defaults.</param>
    /// <param name="stride">The stride.</param>
    /// <param name="padding">Zero padding on each side.</param>
    /// <returns>[N, C_out, OutL].</returns>
    public static Tensor Conv1d(Tensor x, Tensor w, Tensor? bias = null, MacOptions? options = null, int stride = 1, int padding = 0) =>
        FMac.conv1d(Core(options), stride, padding, w, Option(bias), x);

    /// <summary>hxtorch's ReLU of int8 outputs: clamp(floor x, 0, 127); derivative [x > 0].</summary>
    /// <param name="x">The outputs.</param>
    /// <param name="options">Selects the mode (ideal: x · [x > 0]); null for the defaults.</param>
    /// <returns>The rectified outputs.</returns>
    public static Tensor Relu(Tensor x, MacOptions? options = null) => FMac.relu(Core(options), x);

    /// <summary>hxtorch's converting ReLU from int8 outputs to the next layer's 5-bit inputs:
    /// clamp(floor(clamp(floor x, 0, 127) / 2^shift), 0, 31); derivative [x > 0] / 2^shift.</summary>
    /// <param name="x">The outputs.</param>
    /// <param name="shift">The right shift, 0..7.</param>
    /// <param name="options">Selects the mode (ideal: x · [x > 0] / 2^shift); null for the defaults.</param>
    /// <returns>The next layer's inputs.</returns>
    public static Tensor ConvertingRelu(Tensor x, int shift, MacOptions? options = null) => FMac.convertingRelu(Core(options), shift, x);

    /// <summary>hxtorch's add of int8 values (each floored and clamped, the sum clamped); derivative 1 to both.</summary>
    /// <param name="a">The first operand.</param>
    /// <param name="b">The second operand.</param>
    /// <param name="options">Selects the mode (ideal: a + b); null for the defaults.</param>
    /// <returns>The sum.</returns>
    public static Tensor Add(Tensor a, Tensor b, MacOptions? options = null) => FMac.add(Core(options), a, b);

    /// <summary>hxtorch's initialisation of a layer with <paramref name="fanIn"/> inputs: num_sends, the weights'
    /// standard deviation and the bias bound, such that the outputs span the converting ReLU's range.</summary>
    /// <param name="fanIn">The layer's inputs per output (for a convolution C · kh · kw).</param>
    /// <param name="reluShift">The shift of the converting ReLU after it.</param>
    /// <param name="gain">The chip's gain.</param>
    /// <returns>The scales.</returns>
    public static MacInit InitScales(int fanIn, int reluShift = 1, double gain = 0.002)
    {
        var (sends, std, bound) = FMac.initScales(gain, reluShift, fanIn);
        return new MacInit(sends, std, bound);
    }

    /// <summary>The patch matrix of a 2-D convolution, one row per MAC pass (what <see cref="PassSeconds"/> of a
    /// convolution takes).</summary>
    /// <param name="x">[N, C, H, W].</param>
    /// <param name="kernel">The square kernel's side.</param>
    /// <param name="stride">The stride.</param>
    /// <param name="padding">Zero padding on each side.</param>
    /// <returns>[N · OutH · OutW, C · kernel · kernel].</returns>
    public static Tensor Conv2dPatches(Tensor x, int kernel, int stride = 1, int padding = 0) =>
        FMac.conv2dPatches(stride, stride, padding, padding, kernel, kernel, x);

    /// <summary>The emulated hardware seconds of one product per row of x (its spike trains and one reset and
    /// readout per sequential run).</summary>
    /// <param name="x">[batch, K], the product's inputs.</param>
    /// <param name="outputs">The product's output columns N.</param>
    /// <param name="options">The product's settings; null for the defaults.</param>
    /// <returns>Seconds per row.</returns>
    public static IReadOnlyList<double> PassSeconds(Tensor x, int outputs, MacOptions? options = null) =>
        FMac.passSeconds(Core(options), x, outputs);

    /// <summary>The emulated ASIC energy of one product per row of x (<see cref="PassSeconds"/> at the MAC
    /// mode's 0.696 W).</summary>
    /// <param name="x">[batch, K], the product's inputs.</param>
    /// <param name="outputs">The product's output columns N.</param>
    /// <param name="options">The product's settings; null for the defaults.</param>
    /// <returns>Joules per row.</returns>
    public static IReadOnlyList<double> PassJoules(Tensor x, int outputs, MacOptions? options = null) =>
        FMac.passJoules(Core(options), x, outputs);
}
