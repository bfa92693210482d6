// W1 in TorchSharp, the .NET peer of `bench w1` (shared/reference/workloads.md, "W1"), written the
// way a TorchSharp user writes it: a loop over time steps in C#, a custom autograd function for the
// SuperSpike surrogate, the input currents of all steps from one matmul, torch.optim.Adam. The same
// program as bench/peers/torch_w1.py, line for line.
//
//   torchsharp_w1 bench [--reps N]   prints samples_per_s=<n> loss=<l> (median of N >= 10 timed
//                                    steps after 3 warm-up steps, 2 threads)
//   torchsharp_w1 check <dir>        reads x.npy [T;B;NI], labels.npy [B], w1.npy [NI;NH],
//                                    w2.npy [NH;NO]; writes loss.npy, g1.npy, g2.npy (float64)
//
// bench/peers/run_w1_all.sh builds it and makes its native library loadable on Debian 12.
using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

const int B = 64, T = 100, NI = 256, NH = 246, NO = 10;
const double Dt = 1e-3, TauSyn = 5e-3, TauMem = 10e-3, Threshold = 1.0;
const double Alpha = Dt / TauMem;      // membrane: v <- v + dt/tauMem (-v + i)
const double Beta = 1.0 - Dt / TauSyn; // synapse:  i <- i (1 - dt/tauSyn) + input

if (args.Length >= 1 && args[0] == "bench")
{
    var at = Array.IndexOf(args, "--reps");
    return Bench(Math.Max(10, at >= 0 && at + 1 < args.Length ? int.Parse(args[at + 1]) : 15));
}
if (args.Length == 2 && args[0] == "check")
    return Check(args[1]);
Console.Error.WriteLine("usage: torchsharp_w1 bench [--reps N] | check <dir>");
return 2;

// Readout maxima m [B; NO] and the hidden spike count for time-major input spikes x [T; B; NI].
static (Tensor M, double Spikes) RunNetwork(Tensor x, Tensor w1, Tensor w2)
{
    var (steps, batch) = (x.shape[0], x.shape[1]);
    var h1 = einsum("tbi,ih->tbh", x, w1); // input currents of all steps, one matmul
    var v = zeros(batch, NH, dtype: x.dtype);
    var i = zeros(batch, NH, dtype: x.dtype);
    var vo = zeros(batch, NO, dtype: x.dtype);
    var io = zeros(batch, NO, dtype: x.dtype);
    var trace = new List<Tensor>();
    var spikes = 0.0;
    for (var t = 0; t < steps; t++)
    {
        v = v + Alpha * (-v + i); // uses the synaptic current before this step's input
        i = i * Beta + h1[t];
        var z = SuperSpike.apply(v - Threshold);
        v = v * (1.0 - z.detach()); // reset to 0; the reset carries no gradient
        vo = vo + Alpha * (-vo + io);
        io = io * Beta + z.matmul(w2);
        trace.Add(vo);
        spikes += z.detach().sum().item<float>();
    }
    // m = max over time (amax shares a tie's gradient evenly, as SnnFunc's max and torch_w1.py do).
    return (stack(trace).amax(0), spikes);
}

static (Tensor Loss, double Spikes) LossFn(Tensor x, Tensor labels, Tensor w1, Tensor w2)
{
    var (m, spikes) = RunNetwork(x, w1, w2);
    return (nn.functional.cross_entropy(m, labels), spikes);
}

// Every input neuron of every sample fires once, at a uniformly random step in [0, T) (the same
// draws as W1Bench.makeInput: System.Random(1), sample-major).
static (Tensor X, Tensor Labels) MakeInput()
{
    var rng = new Random(1);
    var x = new float[T * B * NI];
    for (var b = 0; b < B; b++)
        for (var n = 0; n < NI; n++)
            x[(rng.Next(T) * B + b) * NI + n] = 1f;
    var labels = Enumerable.Range(0, B).Select(_ => (long)rng.Next(NO)).ToArray();
    return (tensor(x, new long[] { T, B, NI }), tensor(labels));
}

static int Bench(int reps)
{
    set_num_threads(2);
    manual_seed(2);
    var (x, labels) = MakeInput();
    var w1 = nn.Parameter(randn(NI, NH) * 4.0 / Math.Sqrt(NI));
    var w2 = nn.Parameter(randn(NH, NO) * 4.0 / Math.Sqrt(NH));
    var opt = optim.Adam(new[] { w1, w2 }, lr: 1e-3);
    double initial, spikes;
    using (no_grad())
    {
        var (l, s) = LossFn(x, labels, w1, w2);
        (initial, spikes) = (l.item<float>(), s);
    }

    double TrainStep()
    {
        // A dispose scope frees each step's temporaries at once, as TorchSharp's guide advises
        // (without it they wait for the GC's finalizer thread).
        using var scope = NewDisposeScope();
        opt.zero_grad();
        var (loss, _) = LossFn(x, labels, w1, w2);
        loss.backward();
        opt.step();
        return loss.item<float>();
    }

    for (var k = 0; k < 3; k++)
        TrainStep();
    var times = new double[reps];
    var last = double.NaN;
    for (var k = 0; k < reps; k++)
    {
        var sw = Stopwatch.StartNew();
        last = TrainStep();
        times[k] = sw.Elapsed.TotalSeconds;
    }
    Array.Sort(times);
    var median = times[reps / 2];
    Console.WriteLine(
        $"torchsharp_w1 threads={get_num_threads()} torchsharp=0.107.0 libtorch={__version__} "
            + $"samples_per_s={B / median:F1} median_ms={median * 1e3:F2} initial_loss={initial:F4} "
            + $"loss={last:F4} hidden_spikes_per_sample={spikes / B:F1}"
    );
    return 0;
}

static int Check(string dir)
{
    set_num_threads(2);
    var x = Npy.Load(Path.Combine(dir, "x.npy"));
    var labels = Npy.Load(Path.Combine(dir, "labels.npy")).to(ScalarType.Int64);
    var w1 = Npy.Load(Path.Combine(dir, "w1.npy")).to(x.dtype).requires_grad_();
    var w2 = Npy.Load(Path.Combine(dir, "w2.npy")).to(x.dtype).requires_grad_();
    var (loss, spikes) = LossFn(x, labels, w1, w2);
    loss.backward();
    Npy.Save(Path.Combine(dir, "loss.npy"), loss.detach());
    Npy.Save(Path.Combine(dir, "g1.npy"), w1.grad!);
    Npy.Save(Path.Combine(dir, "g2.npy"), w2.grad!);
    Console.WriteLine($"torchsharp_w1 check loss={loss.item<float>():F6} hidden_spikes_per_sample={spikes / x.shape[1]:F1}");
    return 0;
}

/// <summary>Heaviside forward (0 at exactly 0); SuperSpike surrogate 1 / (100 |x| + 1)^2 backward.</summary>
sealed class SuperSpike : autograd.SingleTensorFunction<SuperSpike>
{
    const double Scale = 100.0;

    public override string Name => "SuperSpike";

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        ctx.save_for_backward(new List<Tensor> { x });
        return (x > 0).to(x.dtype);
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var x = ctx.get_saved_variables()[0];
        return new List<Tensor> { gradOutput / (Scale * x.abs() + 1.0).pow(2) };
    }
}

/// <summary>The .npy files of the check: little-endian float32/float64 in C order, read and written
/// as float64 (the precision of the comparison).</summary>
static class Npy
{
    static readonly byte[] Magic = { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y' };

    public static Tensor Load(string path)
    {
        using var r = new BinaryReader(File.OpenRead(path));
        if (!r.ReadBytes(6).SequenceEqual(Magic))
            throw new InvalidDataException($"{path}: not an .npy file");
        var major = r.ReadByte();
        r.ReadByte();
        var headerLength = major == 1 ? r.ReadUInt16() : (int)r.ReadUInt32();
        var header = System.Text.Encoding.ASCII.GetString(r.ReadBytes(headerLength));
        var descr = Between(header, "'descr': '", "'");
        if (header.Contains("'fortran_order': True"))
            throw new InvalidDataException($"{path}: Fortran order is not read");
        var shape = Between(header, "'shape': (", ")")
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(long.Parse)
            .ToArray();
        var count = shape.Aggregate(1L, (a, b) => a * b);
        var values = new double[count];
        for (var k = 0; k < count; k++)
            values[k] = descr switch
            {
                "<f4" => r.ReadSingle(),
                "<f8" => r.ReadDouble(),
                _ => throw new InvalidDataException($"{path}: dtype {descr} is not read (float32/float64 only)"),
            };
        var t = tensor(values, shape);
        return descr == "<f4" ? t.to(ScalarType.Float32) : t;
    }

    public static void Save(string path, Tensor t)
    {
        var values = t.to(ScalarType.Float64).contiguous().data<double>().ToArray();
        var shape = string.Concat(t.shape.Select(d => $"{d}, "));
        var header = $"{{'descr': '<f8', 'fortran_order': False, 'shape': ({shape}), }}";
        header = header.PadRight((header.Length + 11) / 64 * 64 + 63 - 10) + "\n";
        using var w = new BinaryWriter(File.Create(path));
        w.Write(Magic);
        w.Write((byte)1);
        w.Write((byte)0);
        w.Write((ushort)header.Length);
        w.Write(System.Text.Encoding.ASCII.GetBytes(header));
        foreach (var v in values)
            w.Write(v);
    }

    static string Between(string s, string start, string end)
    {
        var i = s.IndexOf(start, StringComparison.Ordinal);
        if (i < 0)
            throw new InvalidDataException($"npy header without {start}: {s}");
        i += start.Length;
        return s[i..s.IndexOf(end, i, StringComparison.Ordinal)];
    }
}
