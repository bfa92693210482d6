/// Counter-based, splittable pseudo-random numbers in the style of JAX, on raw arrays.
///
/// The block function is Threefry-2x32 with 20 rounds (Salmon, Moraes, Dror and Shaw, "Parallel
/// random numbers: as easy as 1, 2, 3", SC 2011): a keyed bijection of a 64-bit counter. Every
/// random word is the output of the block function on (key, counter), so element i of any fill
/// depends only on the key and i: results are identical whatever the number of threads used.
///
/// Counter layout. The second counter word separates uses of one key, so they never overlap:
///   * bits / samplers: counter (block index, 0);
///   * split:           counter (child index, 1), the output words being the child key;
///   * foldIn:          counter (data, 2).
/// Consequently `split k n` returns the first n children of k whatever n is. The streams are not
/// bit-compatible with JAX's (which lays counters out differently), only modelled on it.
module SnnFunc.RandomBits

open System
open System.Threading.Tasks
open SnnFunc.Kernels

/// A random key: the two 32-bit words of a Threefry-2x32 key. Keys are values; a key should be
/// consumed once (by a sampler, `split` or `foldIn`) and never reused for a second purpose.
[<Struct>]
type Key = { K0: uint32; K1: uint32 }

// ---------------------------------------------------------------------------------------------
// Threefry-2x32
// ---------------------------------------------------------------------------------------------

let inline private rotl (x: uint32) (r: int) = (x <<< r) ||| (x >>> (32 - r))

/// One Threefry round on the pair (x0, x1) with rotation r.
let inline private mix (x0: byref<uint32>) (x1: byref<uint32>) (r: int) =
    x0 <- x0 + x1
    x1 <- rotl x1 r ^^^ x0

/// Threefry-2x32, 20 rounds: encrypts the counter (c0, c1) under the key.
let threefry2x32 (key: Key) (c0: uint32) (c1: uint32) : struct (uint32 * uint32) =
    let ks0 = key.K0
    let ks1 = key.K1
    let ks2 = 0x1BD11BDAu ^^^ ks0 ^^^ ks1
    let mutable x0 = c0 + ks0
    let mutable x1 = c1 + ks1

    // Rotation constants for 2x32 cycle with period 8; a key is injected after every 4 rounds.
    mix &x0 &x1 13
    mix &x0 &x1 15
    mix &x0 &x1 26
    mix &x0 &x1 6
    x0 <- x0 + ks1
    x1 <- x1 + ks2 + 1u
    mix &x0 &x1 17
    mix &x0 &x1 29
    mix &x0 &x1 16
    mix &x0 &x1 24
    x0 <- x0 + ks2
    x1 <- x1 + ks0 + 2u
    mix &x0 &x1 13
    mix &x0 &x1 15
    mix &x0 &x1 26
    mix &x0 &x1 6
    x0 <- x0 + ks0
    x1 <- x1 + ks1 + 3u
    mix &x0 &x1 17
    mix &x0 &x1 29
    mix &x0 &x1 16
    mix &x0 &x1 24
    x0 <- x0 + ks1
    x1 <- x1 + ks2 + 4u
    mix &x0 &x1 13
    mix &x0 &x1 15
    mix &x0 &x1 26
    mix &x0 &x1 6
    x0 <- x0 + ks2
    x1 <- x1 + ks0 + 5u
    struct (x0, x1)

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

/// The key for a seed: its high 32 bits and its low 32 bits (JAX's PRNGKey layout).
let keyOfSeed (seed: int64) : Key =
    {
        K0 = uint32 (uint64 seed >>> 32)
        K1 = uint32 (uint64 seed)
    }

/// `n` new keys derived from `key`, independent of it and of one another.
let split (key: Key) (n: int) : Key[] =
    if n < 0 then
        invalidArg "n" $"RandomBits.split: the number of keys must be non-negative, got %d{n}"

    Array.init n (fun j ->
        let struct (a, b) = threefry2x32 key (uint32 j) 1u
        { K0 = a; K1 = b })

/// A new key derived from `key` and the integer `data` (for example a step or element index).
let foldIn (key: Key) (data: int) : Key =
    let struct (a, b) = threefry2x32 key (uint32 data) 2u
    { K0 = a; K1 = b }

// ---------------------------------------------------------------------------------------------
// Parallel fills
// ---------------------------------------------------------------------------------------------

/// Elements per work item. Chunk boundaries do not affect results (fills are element-wise pure).
let private chunk = 1 <<< 14

/// Runs `body start stop` over [0, n) in chunks, in parallel when n is large.
let private forChunks (n: int) (body: int -> int -> unit) =
    let threads = Parallelism.MaxThreads

    if n <= chunk || threads <= 1 then
        if n > 0 then
            body 0 n
    else
        let chunks = (n + chunk - 1) / chunk
        let opts = ParallelOptions(MaxDegreeOfParallelism = threads)

        Parallel.For(0, chunks, opts, fun c -> body (c * chunk) (min n ((c + 1) * chunk)))
        |> ignore

let private checkN (fn: string) (n: int) =
    if n < 0 then
        invalidArg "n" $"RandomBits.%s{fn}: the element count must be non-negative, got %d{n}"

let private checkFinite (op: string) (name: string) (v: float) =
    if not (Double.IsFinite v) then
        invalidArg name $"%s{op}: %s{name} must be finite, got %g{v}"

/// Checks uniform's range; `op` names the calling function in the message.
let internal validateUniform (op: string) (lo: float) (hi: float) =
    checkFinite op "lo" lo
    checkFinite op "hi" hi

    if not (lo < hi) then
        invalidArg "hi" $"%s{op}: lo must be less than hi, got lo = %g{lo}, hi = %g{hi}"

    if not (Double.IsFinite(hi - lo)) then
        invalidArg "hi" $"%s{op}: the range hi - lo overflows (lo = %g{lo}, hi = %g{hi})"

/// Checks a Bernoulli probability.
let internal validateBernoulli (op: string) (p: float) =
    if not (p >= 0.0 && p <= 1.0) then
        invalidArg "p" $"%s{op}: p must be in [0, 1], got %g{p}"

/// Checks a Poisson rate.
let internal validatePoisson (op: string) (lambda: float) =
    if not (lambda >= 0.0 && Double.IsFinite lambda) then
        invalidArg "lambda" $"%s{op}: lambda must be finite and non-negative, got %g{lambda}"

/// Fills out[start..stop) with the 32-bit words of the stream: word i is word (i mod 2) of block i/2.
let private fillWords (key: Key) (start: int) (stop: int) (put: int -> uint32 -> unit) =
    let mutable b = start >>> 1

    while 2 * b < stop do
        let struct (w0, w1) = threefry2x32 key (uint32 b) 0u
        let i = 2 * b

        if i >= start then
            put i w0

        if i + 1 < stop then
            put (i + 1) w1

        b <- b + 1

/// `n` random 32-bit words; element i depends only on the key and i.
let bits (key: Key) (n: int) : uint32[] =
    checkN "bits" n
    let out = Array.zeroCreate<uint32> n
    forChunks n (fun s e -> fillWords key s e (fun i w -> out[i] <- w))
    out

// ---------------------------------------------------------------------------------------------
// Uniform variates from words
// ---------------------------------------------------------------------------------------------

let private two32 = 4294967296.0
let private inv2p24 = 1.0 / 16777216.0
let private inv2p32 = 1.0 / two32
let private inv2p53 = 1.0 / 9007199254740992.0

/// 53 random bits from two words, as an integer in [0, 2^53).
let inline private bits53 (w0: uint32) (w1: uint32) =
    (uint64 (w0 >>> 5) <<< 26) ||| uint64 (w1 >>> 6)

/// A double in [0, 1) with 53 random bits from block `j` of the key's stream.
let inline private unit53 (key: Key) (j: int) =
    let struct (w0, w1) = threefry2x32 key (uint32 j) 0u
    float (bits53 w0 w1) * inv2p53

/// A double in (0, 1) with 53 random bits (the midpoint of a 2^-53 cell) from block `j`.
let inline private open53 (key: Key) (j: int) =
    let struct (w0, w1) = threefry2x32 key (uint32 j) 0u
    (float (bits53 w0 w1) + 0.5) * inv2p53

// ---------------------------------------------------------------------------------------------
// Samplers
// ---------------------------------------------------------------------------------------------

/// `n` samples uniform on [lo, hi). Float32: 24 random bits per element (word i of the stream);
/// Float64: 53 random bits per element (both words of block i). Results never reach hi.
let uniform (key: Key) (n: int) (dtype: DType) (lo: float) (hi: float) : Storage =
    checkN "uniform" n
    validateUniform "RandomBits.uniform" lo hi
    let width = hi - lo

    match dtype with
    | Int32 -> invalidArg "dtype" "RandomBits: random samples are float32 or float64; convert to int32 afterwards"
    | Float32 ->
        let lo32 = float32 lo
        let hi32 = float32 hi
        // The largest float32 below hi32 (or lo32 when the range collapses in float32).
        let top = max lo32 (MathF.BitDecrement hi32)
        let out = Array.zeroCreate<float32> n

        forChunks n (fun s e ->
            fillWords key s e (fun i w ->
                let x = float32 (lo + width * (float (w >>> 8) * inv2p24))
                out[i] <- if x >= hi32 then top else x))

        Storage.F32 out
    | Float64 ->
        let top = Math.BitDecrement hi
        let out = Array.zeroCreate<float> n

        forChunks n (fun s e ->
            for i in s .. e - 1 do
                let x = lo + width * unit53 key i
                out[i] <- if x >= hi then top else x)

        Storage.F64 out

/// `n` standard normal samples (Box–Muller). Elements 2j and 2j+1 form one Box–Muller pair.
/// Float32: the pair uses both words of block j (32-bit uniforms; |z| ≤ 6.7); Float64: blocks 2j
/// and 2j+1 (53-bit uniforms; |z| ≤ 8.6). The radius uniform lies in (0, 1], so log never sees 0
/// and the results are always finite.
let normal (key: Key) (n: int) (dtype: DType) : Storage =
    checkN "normal" n
    let twoPi = 2.0 * Math.PI

    let pairs (put: int -> float -> unit) (pairUniforms: int -> struct (float * float)) s e =
        for j in s / 2 .. (e - 1) / 2 do
            let struct (u1, u2) = pairUniforms j
            let r = Math.Sqrt(-2.0 * Math.Log u1)
            let struct (sn, cs) = Math.SinCos(twoPi * u2)
            let i = 2 * j

            if i >= s then
                put i (r * cs)

            if i + 1 < e then
                put (i + 1) (r * sn)

    match dtype with
    | Int32 -> invalidArg "dtype" "RandomBits: random samples are float32 or float64; convert to int32 afterwards"
    | Float32 ->
        let out = Array.zeroCreate<float32> n

        let uniforms j =
            let struct (w0, w1) = threefry2x32 key (uint32 j) 0u
            struct ((float w0 + 1.0) * inv2p32, float w1 * inv2p32)

        forChunks n (fun s e -> pairs (fun i z -> out[i] <- float32 z) uniforms s e)
        Storage.F32 out
    | Float64 ->
        let out = Array.zeroCreate<float> n

        let uniforms j =
            let struct (a0, a1) = threefry2x32 key (uint32 (2 * j)) 0u
            let struct (b0, b1) = threefry2x32 key (uint32 (2 * j + 1)) 0u
            struct ((float (bits53 a0 a1) + 1.0) * inv2p53, float (bits53 b0 b1) * inv2p53)

        forChunks n (fun s e -> pairs (fun i z -> out[i] <- z) uniforms s e)
        Storage.F64 out

/// `n` Bernoulli(p) samples as 0 or 1: element i is 1 when word i of the stream, read as a
/// fraction of 2^32, is below p (so p = 0 never and p = 1 always gives 1).
let bernoulli (key: Key) (n: int) (dtype: DType) (p: float) : Storage =
    checkN "bernoulli" n
    validateBernoulli "RandomBits.bernoulli" p

    let threshold = p * two32

    match dtype with
    | Int32 -> invalidArg "dtype" "RandomBits: random samples are float32 or float64; convert to int32 afterwards"
    | Float32 ->
        let out = Array.zeroCreate<float32> n
        forChunks n (fun s e -> fillWords key s e (fun i w -> out[i] <- if float w < threshold then 1.0f else 0.0f))
        Storage.F32 out
    | Float64 ->
        let out = Array.zeroCreate<float> n
        forChunks n (fun s e -> fillWords key s e (fun i w -> out[i] <- if float w < threshold then 1.0 else 0.0))
        Storage.F64 out

// log(k!) for small k exactly by summation; Stirling's series beyond.
let private logFactTable =
    let t = Array.zeroCreate<float> 32

    for k in 2 .. t.Length - 1 do
        t[k] <- t[k - 1] + log (float k)

    t

let private halfLog2Pi = 0.5 * log (2.0 * Math.PI)

/// log(k!) for an integer-valued k >= 0.
let private logFactorial (k: float) =
    if k < float logFactTable.Length then
        logFactTable[int k]
    else
        let x = k + 1.0
        let x2 = x * x

        (x - 0.5) * log x - x
        + halfLog2Pi
        + (1.0 / 12.0 - (1.0 / 360.0 - 1.0 / (1260.0 * x2)) / x2) / x

/// One Poisson(lambda) variate drawn from the sub-stream `sub` (uniform j is block j).
let private poissonOne (sub: Key) (lambda: float) : float =
    if lambda = 0.0 then
        0.0
    elif lambda < 10.0 then
        // Knuth: count uniforms until their running product falls to exp(-lambda) or below.
        let limit = exp -lambda
        let mutable prod = open53 sub 0
        let mutable k = 0
        let mutable j = 1

        while prod > limit do
            prod <- prod * open53 sub j
            k <- k + 1
            j <- j + 1

        float k
    else
        // Hörmann (1993), "The transformed rejection method for generating Poisson random
        // variables" (PTRS): a transformed-rejection sampler with a squeeze.
        let slam = sqrt lambda
        let loglam = log lambda
        let b = 0.931 + 2.53 * slam
        let a = -0.059 + 0.02483 * b
        let logInvAlpha = log (1.1239 + 1.1328 / (b - 3.4))
        let vr = 0.9277 - 3.6224 / (b - 2.0)
        let mutable result = nan
        let mutable j = 0

        while Double.IsNaN result do
            let u = open53 sub j - 0.5
            let v = open53 sub (j + 1)
            j <- j + 2
            let us = 0.5 - abs u
            let k = floor ((2.0 * a / us + b) * u + lambda + 0.43)

            if us >= 0.07 && v <= vr then
                result <- k
            elif k < 0.0 || (us < 0.013 && v > us) then
                ()
            elif
                log v + logInvAlpha - log (a / (us * us) + b)
                <= -lambda + k * loglam - logFactorial k
            then
                result <- k

        result

/// `n` Poisson(lambda) samples. Element i is drawn from its own sub-stream `foldIn key i`, with
/// Knuth's multiplication method for lambda < 10 and Hörmann's PTRS for lambda >= 10.
let poisson (key: Key) (n: int) (dtype: DType) (lambda: float) : Storage =
    checkN "poisson" n
    validatePoisson "RandomBits.poisson" lambda

    match dtype with
    | Int32 -> invalidArg "dtype" "RandomBits: random samples are float32 or float64; convert to int32 afterwards"
    | Float32 ->
        let out = Array.zeroCreate<float32> n

        forChunks n (fun s e ->
            for i in s .. e - 1 do
                out[i] <- float32 (poissonOne (foldIn key i) lambda))

        Storage.F32 out
    | Float64 ->
        let out = Array.zeroCreate<float> n

        forChunks n (fun s e ->
            for i in s .. e - 1 do
                out[i] <- poissonOne (foldIn key i) lambda)

        Storage.F64 out
