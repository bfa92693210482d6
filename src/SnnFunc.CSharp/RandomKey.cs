namespace SnnFunc.CSharp;

/// <summary>
/// A key of SnnFunc's counter-based random numbers (Threefry, as in JAX): the same key gives the
/// same numbers on every machine and thread count. Keys are values: split them instead of reusing
/// them for different purposes.
/// </summary>
public sealed class RandomKey : IEquatable<RandomKey>
{
    internal RandomKey(RandomBits.Key key) => Key = key;

    internal RandomBits.Key Key { get; }

    /// <summary>The key of a seed (<c>Random.key seed</c> in F#).</summary>
    /// <param name="seed">The seed.</param>
    /// <returns>The key.</returns>
    public static RandomKey FromSeed(long seed) => new(SnnFunc.Random.key(seed));

    /// <summary>Two independent keys derived from this one.</summary>
    /// <returns>The two keys.</returns>
    public KeyPair Split()
    {
        var r = SnnFunc.Random.split(Key);
        return new KeyPair(new RandomKey(r.Item1), new RandomKey(r.Item2));
    }

    /// <summary><paramref name="count"/> independent keys derived from this one.</summary>
    /// <param name="count">The number of keys.</param>
    /// <returns>The keys.</returns>
    public IReadOnlyList<RandomKey> Split(int count) =>
        SnnFunc.Random.splitN(Key, count).Select(k => new RandomKey(k)).ToArray();

    /// <summary>A key derived from this one and an integer (for example one key per epoch).</summary>
    /// <param name="data">The integer.</param>
    /// <returns>The derived key.</returns>
    public RandomKey FoldIn(int data) => new(SnnFunc.Random.foldIn(Key, data));

    /// <summary>Standard normal samples.</summary>
    /// <param name="shape">The shape.</param>
    /// <param name="dtype">The element type (Float32 by default).</param>
    /// <returns>The samples.</returns>
    public Tensor Normal(int[] shape, DType? dtype = null) => SnnFunc.Random.normalAs(Interop.DTypeOr32(dtype), Key, shape);

    /// <summary>Samples uniform on [low, high).</summary>
    /// <param name="shape">The shape.</param>
    /// <param name="low">The lower bound.</param>
    /// <param name="high">The upper bound.</param>
    /// <param name="dtype">The element type (Float32 by default).</param>
    /// <returns>The samples.</returns>
    public Tensor Uniform(int[] shape, double low = 0.0, double high = 1.0, DType? dtype = null) =>
        SnnFunc.Random.uniformRangeAs(Interop.DTypeOr32(dtype), Key, low, high, shape);

    /// <summary>0/1 samples that are 1 with probability <paramref name="p"/>.</summary>
    /// <param name="p">The probability of a 1.</param>
    /// <param name="shape">The shape.</param>
    /// <param name="dtype">The element type (Float32 by default).</param>
    /// <returns>The samples.</returns>
    public Tensor Bernoulli(double p, int[] shape, DType? dtype = null) =>
        SnnFunc.Random.bernoulliAs(Interop.DTypeOr32(dtype), Key, p, shape);

    /// <summary>Poisson-distributed counts with mean <paramref name="lambda"/>.</summary>
    /// <param name="lambda">The mean.</param>
    /// <param name="shape">The shape.</param>
    /// <param name="dtype">The element type (Float32 by default).</param>
    /// <returns>The samples.</returns>
    public Tensor Poisson(double lambda, int[] shape, DType? dtype = null) =>
        SnnFunc.Random.poissonAs(Interop.DTypeOr32(dtype), Key, lambda, shape);

    /// <inheritdoc/>
    public bool Equals(RandomKey? other) => other is not null && Key.Equals(other.Key);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is RandomKey k && Equals(k);

    /// <inheritdoc/>
    public override int GetHashCode() => Key.GetHashCode();

    /// <inheritdoc/>
    public override string ToString() => $"RandomKey({Key.K0:x8}, {Key.K1:x8})";
}

/// <summary>Two keys from <see cref="RandomKey.Split()"/>.</summary>
/// <param name="First">The first key.</param>
/// <param name="Second">The second key.</param>
public sealed record KeyPair(RandomKey First, RandomKey Second);
