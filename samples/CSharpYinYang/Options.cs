using System.Globalization;

namespace CSharpYinYang;

/// <summary>The outcome of <see cref="Options.Parse"/>: the options, or the exit code and the text to
/// print (the usage for --help, exit code 0; one line naming the problem, exit code 2).</summary>
public sealed record ParseResult(Options? Options, int ExitCode, string? Message);

/// <summary>Command-line options with the F# sample's defaults and ranges (samples/YinYang/Options.fs);
/// apart from Program.cs so that the tests can check what is accepted.</summary>
public sealed record Options
{
    /// <summary>Examples in the training split: the largest batch (the ragged last batch is dropped).</summary>
    public const int TrainCount = 5000;

    public int Epochs { get; init; } = 30;
    public int BatchSize { get; init; } = 100;
    public double LearningRate { get; init; } = 0.01;
    public int Hidden { get; init; } = 120;
    public int Steps { get; init; } = 60;
    public long Seed { get; init; }
    public int? Threads { get; init; }
    public string? Checkpoint { get; init; }
    public string? Plots { get; init; }

    public const string Usage =
        "usage: CSharpYinYang [--epochs N (30)] [--batch-size N (100)] [--learning-rate X (0.01)] [--hidden N (120)]\n" +
        "                     [--steps N of 0.5 ms (60)] [--seed N (0)] [--threads N (all cores)] [--checkpoint path]\n" +
        "                     [--plots dir (write training.png, input-raster.png and traces.png there)]";

    /// <summary>Parses and validates a command line.</summary>
    public static ParseResult Parse(string[] args)
    {
        var o = new Options();
        try
        {
            for (int i = 0; i < args.Length; i++)
            {
                var option = args[i];
                string Value() => i + 1 < args.Length ? args[++i] : throw new FormatException($"{option} needs a value");
                T Number<T>(string kind) where T : IParsable<T> =>
                    T.TryParse(Value(), CultureInfo.InvariantCulture, out var v) ? v : throw new FormatException($"{option} needs {kind}, got '{args[i]}'");
                o = option switch
                {
                    "--epochs" => o with { Epochs = Number<int>("an integer") },
                    "--batch-size" => o with { BatchSize = Number<int>("an integer") },
                    "--learning-rate" => o with { LearningRate = Number<double>("a number") },
                    "--hidden" => o with { Hidden = Number<int>("an integer") },
                    "--steps" => o with { Steps = Number<int>("an integer") },
                    "--seed" => o with { Seed = Number<long>("an integer") },
                    "--threads" => o with { Threads = Number<int>("an integer") },
                    "--checkpoint" => o with { Checkpoint = Value() },
                    "--plots" => o with { Plots = Value() },
                    "--help" or "-h" => throw new OperationCanceledException(),
                    _ => throw new ArgumentException($"unknown option {option}\n{Usage}"),
                };
            }
        }
        catch (OperationCanceledException)
        {
            return new ParseResult(null, 0, Usage);
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            return new ParseResult(null, 2, $"CSharpYinYang: {e.Message}");
        }
        return o.Validate() is string problem ? new ParseResult(null, 2, $"CSharpYinYang: {problem}") : new ParseResult(o, 0, null);
    }

    /// <summary>The first value outside its range, as one line naming the option and the range; null if
    /// all are valid.</summary>
    public string? Validate()
    {
        static string? In(string option, int lo, int hi, int value) =>
            value >= lo && value <= hi ? null : $"--{option} must be an integer in [{lo}, {hi}], got {value}";

        // Epochs times the batches per epoch is the schedule's length: it must fit an int.
        return In("epochs", 1, 100_000, Epochs)
            ?? In("batch-size", 1, TrainCount, BatchSize)
            ?? (LearningRate > 0 && double.IsFinite(LearningRate)
                ? null
                : string.Create(CultureInfo.InvariantCulture, $"--learning-rate must be a positive finite number, got {LearningRate}"))
            ?? In("hidden", 1, 100_000, Hidden)
            ?? In("steps", 1, 100_000, Steps)
            ?? (Threads is int t ? In("threads", 1, 1024, t) : null)
            ?? (Checkpoint is string c && string.IsNullOrWhiteSpace(c) ? "--checkpoint must be a non-empty path" : null)
            ?? (Plots is string d && string.IsNullOrWhiteSpace(d) ? "--plots must be a non-empty path" : null)
            ?? (Plots is string f && File.Exists(f) ? $"--plots: '{f}' is a file, not a folder" : null);
    }
}
