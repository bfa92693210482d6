// Trains a spiking network on the Yin-Yang data set (Kriener et al. 2021) through the C# facade:
// 5 latency-coded inputs -> 120 LIF -> 3 LI readout, max-over-time + cross-entropy, Adam with cosine
// decay. The same network and numbers as samples/YinYang (F#). Ends with `test_accuracy=<fraction>`.
//
//   dotnet run -c Release --project samples/CSharpYinYang -- [--epochs 30] [--batch-size 100]
//       [--learning-rate 0.01] [--hidden 120] [--steps 60] [--seed 0] [--threads N] [--checkpoint path] [--plots dir]

using System.Diagnostics;
using System.Globalization;
using CSharpYinYang;
using SnnFunc;
using SnnFunc.CSharp;

var parsed = Options.Parse(args);
if (parsed.Options is not Options options)
{
    (parsed.ExitCode == 0 ? Console.Out : Console.Error).WriteLine(parsed.Message);
    return parsed.ExitCode;
}
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

var history = Trainer.Run(options.Epochs, batches, startEpoch: start,
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

// --plots: the training curves, and the input spikes and readout membranes of test sample 0.
if (options.Plots is string dir)
{
    void Write(Figure figure, string name)
    {
        var file = Path.Combine(dir, name);
        figure.Save(file);
        Console.WriteLine($"wrote {file}");
    }

    if (history.Count > 0) Write(Plots.TrainingCurves(history).WithTitle("Yin-Yang (C#): training"), "training.png");
    var input = Encode(data.Test.X.Narrow(0, 0, 8));
    var label = data.Test.Labels[0];
    Write(Plots.Raster(input, dt).WithTitle($"Yin-Yang (C#): input spikes of test sample 0 (class {label})"), "input-raster.png");
    Write(Plots.Traces(net.Apply(parameters, input), dt).WithTitle($"Yin-Yang (C#): readout membranes of test sample 0 (class {label})"), "traces.png");
}
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"test_accuracy={Accuracy(parameters, data.Test):F4}"));
return 0;
