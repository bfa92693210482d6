module SnnFunc.Tests.RandomTests

open System
open Xunit
open FsCheck
open FsCheck.FSharp
open MathNet.Numerics.Distributions
open SnnFunc
open SnnFunc.Kernels
open SnnFunc.RandomBits

let private toFloats (s: Storage) =
    match s with
    | Storage.F32 a -> Array.map float a
    | Storage.F64 a -> a
    | Storage.I32 a -> Array.map float a

let private mean (xs: float[]) = Array.average xs

let private variance (xs: float[]) =
    let m = mean xs
    (xs |> Array.sumBy (fun x -> (x - m) * (x - m))) / float (xs.Length - 1)

/// Asserts |observed - expected| <= 5 standard errors.
let private within5Se (what: string) (observed: float) (expected: float) (se: float) =
    Assert.True(abs (observed - expected) <= 5.0 * se, $"%s{what}: observed %g{observed}, expected %g{expected} ± 5 × %g{se}")

/// Kolmogorov–Smirnov statistic of the sample against a continuous CDF.
let private ksStatistic (cdf: float -> float) (xs: float[]) =
    let s = Array.sort xs
    let n = float s.Length
    let mutable d = 0.0

    for i in 0 .. s.Length - 1 do
        let f = cdf s[i]
        d <- max d (max (float (i + 1) / n - f) (f - float i / n))

    d

/// The KS critical value at significance 1e-6 (asymptotic: sqrt(-ln(alpha/2) / (2n))).
let private ksCritical (n: int) =
    sqrt (-(log (1e-6 / 2.0)) / (2.0 * float n))

let private withThreads (n: int) (f: unit -> 'a) =
    let saved = Parallelism.MaxThreads
    Parallelism.MaxThreads <- n

    try
        f ()
    finally
        Parallelism.MaxThreads <- saved

// ---------------------------------------------------------------------------------------------
// Threefry known answers (Random123 kat_vectors, threefry2x32 with 20 rounds)
// ---------------------------------------------------------------------------------------------

[<Theory>]
[<InlineData(0x00000000u, 0x00000000u, 0x00000000u, 0x00000000u, 0x6b200159u, 0x99ba4efeu)>]
[<InlineData(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0x1cb996fcu, 0xbb002be7u)>]
[<InlineData(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xc4923a9cu, 0x483df7a0u)>]
let ``threefry2x32 matches the Random123 known answers`` (c0: uint32, c1: uint32, k0: uint32, k1: uint32, r0: uint32, r1: uint32) =
    let struct (x0, x1) = threefry2x32 { K0 = k0; K1 = k1 } c0 c1
    Assert.Equal(r0, x0)
    Assert.Equal(r1, x1)

// ---------------------------------------------------------------------------------------------
// Keys and bits
// ---------------------------------------------------------------------------------------------

[<Fact>]
let ``keyOfSeed splits the seed into high and low words`` () =
    Assert.Equal({ K0 = 0u; K1 = 42u }, keyOfSeed 42L)
    Assert.Equal({ K0 = 0x12345678u; K1 = 0x9abcdef0u }, keyOfSeed 0x123456789abcdef0L)
    Assert.Equal({ K0 = 0xffffffffu; K1 = 0xffffffffu }, keyOfSeed -1L)

[<Fact>]
let ``bits are deterministic and element i depends only on key and i`` () =
    let k = keyOfSeed 7L
    let a = bits k 1001
    Assert.Equal<uint32[]>(a, bits k 1001)
    // A shorter request is a prefix of a longer one.
    Assert.Equal<uint32[]>(a[..500], bits k 501)
    Assert.Equal<uint32[]>(a[..0], bits k 1)
    Assert.Empty(bits k 0)
    // Words come from the block function on counter (i / 2, 0).
    let struct (w0, w1) = threefry2x32 k 3u 0u
    Assert.Equal(w0, a[6])
    Assert.Equal(w1, a[7])
    Assert.NotEqual<uint32[]>(a, bits (keyOfSeed 8L) 1001)

[<Fact>]
let ``split and foldIn give distinct keys (property)`` () =
    let prop (seed: int64) (n: byte) (data: int) =
        let k = keyOfSeed seed
        let n = int n % 16 + 2
        let children = split k n
        let all = Array.append [| k; foldIn k data; foldIn k (data + 1) |] children
        // Children are a prefix-stable family and all keys differ.
        (split k n = children)
        && (split k (n - 1) = children[.. n - 2])
        && (Array.distinct all).Length = all.Length

    Check.QuickThrowOnFailure prop

[<Fact>]
let ``split children produce unrelated streams`` () =
    let k = keyOfSeed 0L
    let children = split k 3

    let streams =
        Array.append [| bits k 64 |] (children |> Array.map (fun c -> bits c 64))

    for i in 0 .. streams.Length - 1 do
        for j in i + 1 .. streams.Length - 1 do
            let same =
                Array.map2 (fun a b -> if a = b then 1 else 0) streams[i] streams[j]
                |> Array.sum

            Assert.True(same <= 1, $"streams %d{i} and %d{j} share %d{same} of 64 words")

[<Fact>]
let ``results do not depend on the thread count`` () =
    let k = keyOfSeed 2024L
    let n = 200_003

    let run () =
        [
            bits k n |> Array.map float
            toFloats (uniform k n Float32 -1.0 3.0)
            toFloats (uniform k n Float64 -1.0 3.0)
            toFloats (normal k n Float32)
            toFloats (normal k n Float64)
            toFloats (bernoulli k n Float32 0.3)
            toFloats (poisson k 50_001 Float64 12.5)
        ]
        |> List.map (Array.map BitConverter.DoubleToInt64Bits)

    let one = withThreads 1 run
    let many = withThreads 8 run

    for a, b in List.zip one many do
        Assert.Equal<int64[]>(a, b)

// ---------------------------------------------------------------------------------------------
// Samplers: statistics with fixed seeds
// ---------------------------------------------------------------------------------------------

let private n = 100_000

[<Theory>]
[<InlineData(true)>]
[<InlineData(false)>]
let ``uniform is uniform on [lo, hi)`` (single: bool) =
    let dtype = if single then Float32 else Float64
    let lo, hi = -2.0, 5.0
    let xs = toFloats (uniform (keyOfSeed 1L) n dtype lo hi)
    Assert.All(xs, fun x -> Assert.True(x >= lo && x < hi, $"%g{x} outside [%g{lo}, %g{hi})"))
    let w = hi - lo
    within5Se "mean" (mean xs) ((lo + hi) / 2.0) (w / sqrt 12.0 / sqrt (float n))
    // Var of the sample variance of U(0,w): (mu4 - sigma^4) / n, with mu4 = w^4/80, sigma^2 = w^2/12.
    within5Se "variance" (variance xs) (w * w / 12.0) (sqrt ((w ** 4.0 / 80.0 - (w * w / 12.0) ** 2.0) / float n))
    let d = ksStatistic (fun x -> (x - lo) / w) xs
    Assert.True(d < ksCritical n, $"KS statistic %g{d} >= %g{ksCritical n}")

[<Fact>]
let ``uniform never reaches hi even for a tiny float32 range`` () =
    let hi = 1.0 + 1e-7
    let xs = toFloats (uniform (keyOfSeed 3L) 10_000 Float32 1.0 hi)
    Assert.All(xs, fun x -> Assert.True(x >= 1.0 && float32 x < float32 hi))

[<Theory>]
[<InlineData(true)>]
[<InlineData(false)>]
let ``normal is standard normal and always finite`` (single: bool) =
    let dtype = if single then Float32 else Float64
    let xs = toFloats (normal (keyOfSeed 2L) n dtype)
    Assert.All(xs, fun x -> Assert.True(Double.IsFinite x))
    within5Se "mean" (mean xs) 0.0 (1.0 / sqrt (float n))
    // Var of the sample variance of N(0,1): 2 / n.
    within5Se "variance" (variance xs) 1.0 (sqrt (2.0 / float n))
    let d = ksStatistic (fun x -> Normal.CDF(0.0, 1.0, x)) xs
    Assert.True(d < ksCritical n, $"KS statistic %g{d} >= %g{ksCritical n}")

[<Fact>]
let ``normal pairs are uncorrelated`` () =
    let xs = toFloats (normal (keyOfSeed 5L) (2 * n) Float64)
    let r = Array.init n (fun j -> xs[2 * j] * xs[2 * j + 1]) |> mean
    within5Se "E[z0 z1]" r 0.0 (1.0 / sqrt (float n))

[<Theory>]
[<InlineData(0.0)>]
[<InlineData(0.1)>]
[<InlineData(0.5)>]
[<InlineData(0.97)>]
[<InlineData(1.0)>]
let ``bernoulli has mean p`` (p: float) =
    let xs = toFloats (bernoulli (keyOfSeed 4L) n Float32 p)
    Assert.All(xs, fun x -> Assert.True((x = 0.0 || x = 1.0)))
    let se = sqrt (p * (1.0 - p) / float n)

    if p = 0.0 || p = 1.0 then
        Assert.Equal(p, mean xs)
    else
        within5Se "mean" (mean xs) p se

[<Theory>]
[<InlineData(0.5)>]
[<InlineData(4.0)>]
[<InlineData(9.99)>]
[<InlineData(10.0)>]
[<InlineData(30.0)>]
[<InlineData(1000.0)>]
let ``poisson has mean and variance lambda`` (lambda: float) =
    let xs = toFloats (poisson (keyOfSeed 6L) n Float64 lambda)
    Assert.All(xs, fun x -> Assert.True(x >= 0.0 && x = floor x))
    within5Se "mean" (mean xs) lambda (sqrt (lambda / float n))
    // Var of the sample variance of Poisson(l): (mu4 - sigma^4)/n + ... ≈ (l + 2 l^2) / n.
    within5Se "variance" (variance xs) lambda (sqrt ((lambda + 2.0 * lambda * lambda) / float n))

[<Theory>]
[<InlineData(0.5)>]
[<InlineData(4.0)>]
[<InlineData(30.0)>]
let ``poisson frequencies match the pmf`` (lambda: float) =
    let xs = toFloats (poisson (keyOfSeed 9L) n Float32 lambda)

    for k in 0 .. int (lambda * 2.0) + 1 do
        let p = Poisson.PMF(lambda, k)

        if p * float n > 20.0 then
            let observed =
                (xs |> Array.filter (fun x -> x = float k) |> Array.length |> float) / float n

            within5Se $"P(X = %d{k})" observed p (sqrt (p * (1.0 - p) / float n))

[<Fact>]
let ``poisson with lambda 0 is all zeros`` () =
    Assert.All(toFloats (poisson (keyOfSeed 1L) 1000 Float32 0.0), fun x -> Assert.Equal(0.0, x))

[<Fact>]
let ``poisson element i uses the sub-stream foldIn key i`` () =
    let k = keyOfSeed 11L
    let all = toFloats (poisson k 100 Float64 25.0)
    let prefix = toFloats (poisson k 10 Float64 25.0)
    Assert.Equal<float[]>(all[..9], prefix)

// ---------------------------------------------------------------------------------------------
// Argument errors
// ---------------------------------------------------------------------------------------------

let private throwsNaming (fn: string) (f: unit -> 'a) =
    let e = Assert.ThrowsAny<ArgumentException>(fun () -> f () |> ignore)
    Assert.Contains(fn, e.Message)
    e

[<Fact>]
let ``invalid arguments raise ArgumentException naming the function and value`` () =
    let k = keyOfSeed 0L
    throwsNaming "bits" (fun () -> bits k -1) |> ignore
    throwsNaming "split" (fun () -> split k -2) |> ignore
    throwsNaming "uniform" (fun () -> uniform k -1 Float32 0.0 1.0) |> ignore
    let e = throwsNaming "uniform" (fun () -> uniform k 3 Float32 2.0 1.0)
    Assert.Contains("lo = 2", e.Message)
    throwsNaming "uniform" (fun () -> uniform k 3 Float32 1.0 1.0) |> ignore
    throwsNaming "uniform" (fun () -> uniform k 3 Float64 nan 1.0) |> ignore
    throwsNaming "uniform" (fun () -> uniform k 3 Float64 0.0 infinity) |> ignore
    throwsNaming "uniform" (fun () -> uniform k 3 Float64 -1e308 1e308) |> ignore
    throwsNaming "normal" (fun () -> normal k -5 Float64) |> ignore
    let e = throwsNaming "bernoulli" (fun () -> bernoulli k 3 Float32 1.5)
    Assert.Contains("1.5", e.Message)
    throwsNaming "bernoulli" (fun () -> bernoulli k 3 Float32 -0.1) |> ignore
    throwsNaming "bernoulli" (fun () -> bernoulli k 3 Float32 nan) |> ignore
    let e = throwsNaming "poisson" (fun () -> poisson k 3 Float32 -1.0)
    Assert.Contains("-1", e.Message)
    throwsNaming "poisson" (fun () -> poisson k 3 Float32 nan) |> ignore
    throwsNaming "poisson" (fun () -> poisson k 3 Float32 infinity) |> ignore

// ---------------------------------------------------------------------------------------------
// Random: tensors
// ---------------------------------------------------------------------------------------------

[<Fact>]
let ``Random samplers give tensors of the requested shape and dtype`` () =
    let k = Random.key 1L
    let k1, k2 = Random.split k
    Assert.NotEqual(k1, k2)
    Assert.Equal<Key[]>([| k1; k2 |], Random.splitN k 2)
    Assert.Equal(RandomBits.foldIn k 3, Random.foldIn k 3)

    let cases =
        [
            Random.uniform k1 [| 2; 3 |], Float32
            Random.uniformAs Float64 k1 [| 2; 3 |], Float64
            Random.uniformRange k1 -1.0 1.0 [| 4 |], Float32
            Random.normal k1 [| 3; 1; 2 |], Float32
            Random.normalAs Float64 k1 [||], Float64
            Random.bernoulli k1 0.5 [| 0; 5 |], Float32
            Random.poisson k1 3.0 [| 7 |], Float32
            Random.poissonAs Float64 k1 30.0 [| 2; 2 |], Float64
        ]

    for t, dtype in cases do
        Assert.Equal(dtype, t.DType)
        Assert.Equal(t.Count, t.Storage.Length)

    Assert.Equal<int[]>([| 3; 1; 2 |], (Random.normal k1 [| 3; 1; 2 |]).Shape)
    // Same key and size: the same values as the raw sampler.
    Assert.Equal(RandomBits.normal k1 6 Float32, (Random.normal k1 [| 3; 2 |]).Storage)
    Assert.Equal((Random.uniform k2 [| 5 |]).Storage, (Random.uniform k2 [| 5 |]).Storage)

[<Fact>]
let ``Random errors name the Random function`` () =
    let k = Random.key 0L

    throwsNaming "Random.uniformRange" (fun () -> Random.uniformRange k 1.0 0.0 [| 2 |])
    |> ignore

    throwsNaming "Random.bernoulli" (fun () -> Random.bernoulli k 2.0 [| 2 |])
    |> ignore

    throwsNaming "Random.poisson" (fun () -> Random.poisson k -3.0 [| 2 |])
    |> ignore

    throwsNaming "Random.normal" (fun () -> Random.normal k [| -1; 2 |]) |> ignore
    throwsNaming "Random.splitN" (fun () -> Random.splitN k -1) |> ignore
