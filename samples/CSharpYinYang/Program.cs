// Trains a spiking network on the Yin-Yang data set (Kriener et al. 2021) through the C# facade:
// 5 latency-coded inputs -> 120 LIF -> 3 LI readout, max-over-time + cross-entropy, Adam with cosine
// decay. The same network and numbers as samples/YinYang (F#). Ends with `test_accuracy=<fraction>`.
//
//   dotnet run -c Release --project samples/CSharpYinYang -- [--epochs 30] [--batch-size 100]
//       [--learning-rate 0.01] [--hidden 120] [--steps 60] [--seed 0] [--threads N] [--checkpoint path]

using System.Diagnostics;
using System.Globalization;
using SnnFunc;
using SnnFunc.CSharp;

var options = Options.Parse(args);
if (options is null) return 2;
if (options.Threads is int threads) SnnFunc.Kernels.Parallelism.MaxThreads = threads;

// Data and encoding: each of (x, y, 1-x, 1-y, bias) spikes once at u · 15 ms.
const double dt = 0.5e-3, tLate = 15e-3;
var data = Datasets.YinYang(options.Seed);
Tensor Encode(Tensor x) => Encoders.Latency(x, options.Steps, dt, tLate);

// Network: surrogate-gradient LIF hidden layer, leaky-integrator readout.
var net = Network.Sequential(
    Network.Dense(options.Hidden, scale: 6),
    Network.Lif(new LifParameters { Dt = dt }),
    Network.Dense(Datasets.YinYangClasses, scale: 2),
    Network.Li(new LiParameters { Dt = dt }));

var keys = RandomKey.FromSeed(options.Seed).Split();
var parameters = net.Init(keys.First, 5).Parameters;
var batches = data.Train.BatchCount(options.BatchSize, dropLast: true);
var optimizer = Optimizers.Adam(Schedules.CosineDecay(options.LearningRate, options.Epochs * batches, alpha: 0.05));
var state = optimizer.Init(parameters);

Tensor Logits(NetworkParameters p, Tensor x) => Decoders.MaxOverTime(net.Apply(p, Encode(x)));
Tensor LossOf(NetworkParameters p, Batch b) => Losses.CrossEntropy(Logits(p, b.X), b.Labels);
double Accuracy(NetworkParameters p, LabeledDataset d) => Losses.Accuracy(Logits(p, d.X), d.Labels);

// Resume from a checkpoint when one exists: training continues exactly where it stopped.
var start = 0;
if (options.Checkpoint is string path && File.Exists(path))
{
    var loaded = Trainer.LoadCheckpoint(path, parameters, state);
    (parameters, state, start) = (loaded.Parameters, loaded.State, loaded.EpochsDone);
    Console.WriteLine($"resumed from {path} after epoch {start}");
}

Console.WriteLine(
    $"Yin-Yang (C#): train {data.Train.Count}, validation {data.Validation.Count}, test {data.Test.Count}; " +
    $"5-{options.Hidden}-3 LIF network, {options.Steps} steps of {dt * 1e3} ms");
var clock = Stopwatch.StartNew();
List<Batch> epochBatches = [];

Trainer.Run(options.Epochs, batches, startEpoch: start,
    step: (epoch, b) =>
    {
        if (b == 0) epochBatches = data.Train.Batches(options.BatchSize, keys.Second.FoldIn(epoch), dropLast: true).ToList();
        var batch = epochBatches[b];
        var vg = Autodiff.ValueAndGrad(p => LossOf(p, batch), parameters);
        (parameters, state) = optimizer.Step(parameters, vg.Gradient, state);
        return new Dictionary<string, double> { ["loss"] = vg.Value.ToScalar() };
    },
    endEpoch: (epoch, _) =>
    {
        if (options.Checkpoint is string file) Trainer.SaveCheckpoint(file, parameters, state, epoch + 1);
        return new Dictionary<string, double>
        {
            ["val_accuracy"] = Accuracy(parameters, data.Validation),
            ["seconds"] = clock.Elapsed.TotalSeconds,
        };
    });

Console.WriteLine($"training took {clock.Elapsed.TotalSeconds:F1} s");
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"test_accuracy={Accuracy(parameters, data.Test):F4}"));
return 0;

/// <summary>Command-line options with the F# sample's defaults.</summary>
internal sealed record Options
{
    public int Epochs { get; init; } = 30;
    public int BatchSize { get; init; } = 100;
    public double LearningRate { get; init; } = 0.01;
    public int Hidden { get; init; } = 120;
    public int Steps { get; init; } = 60;
    public long Seed { get; init; }
    public int? Threads { get; init; }
    public string? Checkpoint { get; init; }

    private const string Usage =
        "usage: CSharpYinYang [--epochs N (30)] [--batch-size N (100)] [--learning-rate X (0.01)] [--hidden N (120)]\n" +
        "                     [--steps N of 0.5 ms (60)] [--seed N (0)] [--threads N (all cores)] [--checkpoint path]";

    public static Options? Parse(string[] args)
    {
        var o = new Options();
        try
        {
            for (int i = 0; i < args.Length; i++)
            {
                string Value() => i + 1 < args.Length ? args[++i] : throw new FormatException($"{args[i]} needs a value");
                int Int() => int.Parse(Value(), CultureInfo.InvariantCulture);
                o = args[i] switch
                {
                    "--epochs" => o with { Epochs = Int() },
                    "--batch-size" => o with { BatchSize = Int() },
                    "--learning-rate" => o with { LearningRate = double.Parse(Value(), CultureInfo.InvariantCulture) },
                    "--hidden" => o with { Hidden = Int() },
                    "--steps" => o with { Steps = Int() },
                    "--seed" => o with { Seed = long.Parse(Value(), CultureInfo.InvariantCulture) },
                    "--threads" => o with { Threads = Int() },
                    "--checkpoint" => o with { Checkpoint = Value() },
                    "--help" or "-h" => throw new OperationCanceledException(),
                    var other => throw new FormatException($"unknown option {other}"),
                };
            }
            return o;
        }
        catch (OperationCanceledException)
        {
            Console.WriteLine(Usage);
            Environment.Exit(0);
            return null;
        }
        catch (FormatException e)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine(Usage);
            return null;
        }
    }
}
