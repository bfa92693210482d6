using Microsoft.FSharp.Collections;
using static SnnFunc.CSharp.Interop;

namespace SnnFunc.CSharp;

/// <summary>The averaged metrics of one training epoch.</summary>
/// <param name="Epoch">The epoch (0-based).</param>
/// <param name="Metrics">The step metrics averaged over the epoch, followed by those returned at its end.</param>
public sealed record EpochMetrics(int Epoch, IReadOnlyDictionary<string, double> Metrics);

/// <summary>A loaded checkpoint.</summary>
/// <typeparam name="TParams">The parameters' pytree type.</typeparam>
/// <param name="Parameters">The parameters.</param>
/// <param name="State">The optimizer state.</param>
/// <param name="EpochsDone">The number of completed epochs (where to resume).</param>
public sealed record Checkpoint<TParams>(TParams Parameters, OptimizerState State, int EpochsDone);

/// <summary>The training loop with live progress (a progress bar in a terminal, one log line per
/// epoch otherwise) and atomic .npz checkpoints of parameters, optimizer state and epoch.</summary>
public static class Trainer
{
    private static FSharpList<Tuple<string, double>> Metrics(IReadOnlyDictionary<string, double>? metrics) =>
        metrics is null ? FSharpList<Tuple<string, double>>.Empty : List(metrics.Select(kv => Tuple.Create(kv.Key, kv.Value)));

    private static Dictionary<string, double> Dictionary(FSharpList<Tuple<string, double>> metrics)
    {
        var d = new Dictionary<string, double>();
        foreach (var m in metrics) d[m.Item1] = m.Item2;
        return d;
    }

    /// <summary>True when a live progress display is shown (an interactive terminal, not CI or a pipe).</summary>
    public static bool IsInteractive => Train.interactive();

    /// <summary>Runs epochs <paramref name="startEpoch"/> .. <paramref name="epochs"/>−1: calls
    /// <paramref name="step"/>(epoch, batch) for every batch, then <paramref name="endEpoch"/>(epoch,
    /// averages) (evaluate, checkpoint) and prints the epoch's metrics.</summary>
    /// <param name="epochs">The total number of epochs.</param>
    /// <param name="batchesPerEpoch">The number of batches per epoch.</param>
    /// <param name="step">(epoch, batch) ↦ that batch's metrics (e.g. "loss").</param>
    /// <param name="endEpoch">(epoch, averaged metrics) ↦ extra metrics to show (e.g. "val_accuracy"), or null.</param>
    /// <param name="startEpoch">The first epoch (to resume from a checkpoint).</param>
    /// <returns>The metrics of every epoch run.</returns>
    public static IReadOnlyList<EpochMetrics> Run(
        int epochs,
        int batchesPerEpoch,
        Func<int, int, IReadOnlyDictionary<string, double>> step,
        Func<int, IReadOnlyDictionary<string, double>, IReadOnlyDictionary<string, double>?>? endEpoch = null,
        int startEpoch = 0)
    {
        ArgumentNullException.ThrowIfNull(step);
        var history = new List<EpochMetrics>();
        var fsStep = Fn<int, int, FSharpList<Tuple<string, double>>>((e, b) => Metrics(step(e, b)));
        var fsEnd = Fn<int, FSharpList<Tuple<string, double>>, FSharpList<Tuple<string, double>>>((e, averages) =>
        {
            var avg = Dictionary(averages);
            var extra = endEpoch?.Invoke(e, avg);
            var all = new Dictionary<string, double>(avg);
            if (extra is not null) foreach (var kv in extra) all[kv.Key] = kv.Value;
            history.Add(new EpochMetrics(e, all));
            return Metrics(extra);
        });
        Train.run(startEpoch, epochs, batchesPerEpoch, fsStep, fsEnd);
        return history;
    }

    /// <summary>Saves parameters, optimizer state and the number of completed epochs as one .npz
    /// file, replaced atomically (an interrupted save leaves the previous checkpoint intact). Its
    /// arrays are named by key path (see <see cref="Pytree"/>): <c>params/0/W</c>,
    /// <c>opt/0/Mu/0/W</c> (Adam's first moment of that weight), <c>opt/0/Count</c>, <c>epochs_done</c>.</summary>
    /// <typeparam name="TParams">The parameters' pytree type.</typeparam>
    /// <param name="path">The file.</param>
    /// <param name="parameters">The parameters.</param>
    /// <param name="state">The optimizer state.</param>
    /// <param name="epochsDone">The number of completed epochs.</param>
    public static void SaveCheckpoint<TParams>(string path, TParams parameters, OptimizerState state, int epochsDone)
    {
        ArgumentNullException.ThrowIfNull(state);
        Train.saveCheckpoint(path, parameters, state.Inner, epochsDone);
    }

    /// <summary>Loads a checkpoint into the structures of <paramref name="parametersLike"/> and
    /// <paramref name="stateLike"/>, each array by its key path (the shapes must match). Files written
    /// before key paths (arrays <c>param_0000</c> ...) load positionally into the structure they
    /// were saved from.</summary>
    /// <exception cref="InvalidDataException">A leaf has no array, an array has another shape, or an
    /// array matches no leaf (a renamed or removed property, another optimizer); the message names it.</exception>
    /// <typeparam name="TParams">The parameters' pytree type.</typeparam>
    /// <param name="path">The file.</param>
    /// <param name="parametersLike">Parameters of the right structure (e.g. freshly initialised).</param>
    /// <param name="stateLike">An optimizer state of the right structure.</param>
    /// <returns>The parameters, state and completed epochs.</returns>
    public static Checkpoint<TParams> LoadCheckpoint<TParams>(string path, TParams parametersLike, OptimizerState stateLike)
    {
        ArgumentNullException.ThrowIfNull(stateLike);
        var r = Train.loadCheckpoint(path, parametersLike, stateLike.Inner);
        return new Checkpoint<TParams>(r.Item1, new OptimizerState(r.Item2), r.Item3);
    }
}

/// <summary>NumPy .npy and .npz files (interoperable with Python pipelines).</summary>
public static class TensorFiles
{
    /// <summary>Reads a .npy file (float32 or float64 arrays).</summary>
    /// <param name="path">The file.</param>
    /// <returns>The tensor.</returns>
    public static Tensor LoadNpy(string path) => TensorIo.loadNpy(path);

    /// <summary>Writes a tensor as a .npy file.</summary>
    /// <param name="path">The file.</param>
    /// <param name="tensor">The tensor (concrete).</param>
    public static void SaveNpy(string path, Tensor tensor) => TensorIo.saveNpy(path, tensor);

    /// <summary>Reads a .npy array from a stream.</summary>
    /// <param name="stream">The stream.</param>
    /// <returns>The tensor.</returns>
    public static Tensor ReadNpy(Stream stream) => TensorIo.readNpy(stream);

    /// <summary>Writes a tensor to a stream in .npy format.</summary>
    /// <param name="stream">The stream.</param>
    /// <param name="tensor">The tensor.</param>
    public static void WriteNpy(Stream stream, Tensor tensor) => TensorIo.writeNpy(stream, tensor);

    /// <summary>Reads the arrays of a .npz file by name.</summary>
    /// <param name="path">The file.</param>
    /// <returns>The tensors by name.</returns>
    public static IReadOnlyDictionary<string, Tensor> LoadNpz(string path)
    {
        var d = new Dictionary<string, Tensor>();
        foreach (var e in Npz.loadList(path)) d[e.Item1] = e.Item2;
        return d;
    }

    /// <summary>Writes named tensors as a .npz file.</summary>
    /// <param name="path">The file.</param>
    /// <param name="tensors">The tensors by name (written in enumeration order).</param>
    /// <param name="compressed">Deflate the entries.</param>
    public static void SaveNpz(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, bool compressed = false)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var entries = tensors.Select(kv => Tuple.Create(kv.Key, kv.Value)).ToArray();
        if (compressed) Npz.saveCompressed(path, entries);
        else Npz.save(path, entries);
    }
}
