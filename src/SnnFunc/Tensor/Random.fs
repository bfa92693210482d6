/// Random tensors from counter-based keys, in the style of jax.random: a key is an explicit value
/// that is split or folded, never hidden state. Samplers return Float32 tensors; the `...As`
/// variants take the dtype. See RandomBits for the generator and the sampling methods.
[<RequireQualifiedAccess>]
module SnnFunc.Random

open SnnFunc.RandomBits

/// The key for a seed.
let key (seed: int64) : Key = keyOfSeed seed

/// Two new keys from one: use one for the work at hand and keep splitting the other.
let split (key: Key) : Key * Key =
    let ks = RandomBits.split key 2
    ks[0], ks[1]

/// `n` new keys from one.
let splitN (key: Key) (n: int) : Key[] =
    if n < 0 then
        Shape.fail "Random.splitN" $"the number of keys must be non-negative, got %d{n}"

    RandomBits.split key n

/// A new key from a key and an integer (for example a time step or a layer index).
let foldIn (key: Key) (data: int) : Key = RandomBits.foldIn key data

let private count (op: string) (shape: int[]) = Shape.checkedCount op shape

/// Samples uniform on [0, 1) with the given dtype.
let uniformAs (dtype: DType) (key: Key) (shape: int[]) : Tensor =
    let n = count "Random.uniform" shape
    Tensor.FromStorage(shape, RandomBits.uniform key n dtype 0.0 1.0)

/// Float32 samples uniform on [0, 1).
let uniform (key: Key) (shape: int[]) : Tensor = uniformAs Float32 key shape

/// Samples uniform on [lo, hi) with the given dtype.
let uniformRangeAs (dtype: DType) (key: Key) (lo: float) (hi: float) (shape: int[]) : Tensor =
    let n = count "Random.uniformRange" shape
    validateUniform "Random.uniformRange" lo hi
    Tensor.FromStorage(shape, RandomBits.uniform key n dtype lo hi)

/// Float32 samples uniform on [lo, hi).
let uniformRange (key: Key) (lo: float) (hi: float) (shape: int[]) : Tensor = uniformRangeAs Float32 key lo hi shape

/// Standard normal samples with the given dtype.
let normalAs (dtype: DType) (key: Key) (shape: int[]) : Tensor =
    let n = count "Random.normal" shape
    Tensor.FromStorage(shape, RandomBits.normal key n dtype)

/// Float32 standard normal samples.
let normal (key: Key) (shape: int[]) : Tensor = normalAs Float32 key shape

/// Bernoulli(p) samples (0 or 1) with the given dtype.
let bernoulliAs (dtype: DType) (key: Key) (p: float) (shape: int[]) : Tensor =
    let n = count "Random.bernoulli" shape
    validateBernoulli "Random.bernoulli" p
    Tensor.FromStorage(shape, RandomBits.bernoulli key n dtype p)

/// Float32 Bernoulli(p) samples (0 or 1).
let bernoulli (key: Key) (p: float) (shape: int[]) : Tensor = bernoulliAs Float32 key p shape

/// Poisson(lambda) counts with the given dtype.
let poissonAs (dtype: DType) (key: Key) (lambda: float) (shape: int[]) : Tensor =
    let n = count "Random.poisson" shape
    validatePoisson "Random.poisson" lambda
    Tensor.FromStorage(shape, RandomBits.poisson key n dtype lambda)

/// Float32 Poisson(lambda) counts.
let poisson (key: Key) (lambda: float) (shape: int[]) : Tensor = poissonAs Float32 key lambda shape
