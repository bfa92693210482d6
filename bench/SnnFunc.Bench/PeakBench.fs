/// `bench peak`: the machine's measured limits for the rooflines of docs/performance.md: the
/// fused multiply-add rate of the widest vectors the JIT uses here (float32 and float64), and the
/// memory bandwidth of a STREAM-like triad and of a read-only sum over arrays far larger than the
/// last-level cache, each with 1..--threads threads.
module PeakBench

open System
open System.Diagnostics
open System.Numerics
open System.Numerics.Tensors
open System.Runtime.InteropServices
open System.Runtime.CompilerServices
open System.Runtime.Intrinsics
open System.Runtime.Intrinsics.X86
open System.Threading

let private arg (argv: string[]) (name: string) (fallback: string) =
    match Array.tryFindIndex ((=) name) argv with
    | Some i when i + 1 < argv.Length -> argv[i + 1]
    | _ -> fallback

/// Runs body i on threads 0 .. n-1 at once (dedicated threads, released together) and returns
/// the wall time from the release to the last one's end, in seconds.
let private onThreads (n: int) (body: int -> unit) =
    use start = new ManualResetEventSlim(false)
    let mutable ready = 0

    let threads =
        Array.init n (fun i ->
            Thread(
                (fun () ->
                    Interlocked.Increment &ready |> ignore
                    start.Wait()
                    body i),
                IsBackground = true
            ))

    for t in threads do
        t.Start()

    while Volatile.Read &ready < n do
        Thread.SpinWait 10

    let sw = Stopwatch.StartNew()
    start.Set()

    for t in threads do
        t.Join()

    sw.Elapsed.TotalSeconds

// Twelve independent FMA chains: more than the FMA latency (4-5 cycles) times the FMA units (2)
// of the cores these machines have, so the loop runs at the FMA units' throughput. One body for
// both vector widths (the primitives inlined), as ConvChannelTiles' tiles.
let inline private fmaChains
    ([<InlineIfLambda>] splat: float32 -> 'V)
    ([<InlineIfLambda>] fma: 'V -> 'V -> 'V -> 'V)
    ([<InlineIfLambda>] add: 'V -> 'V -> 'V)
    ([<InlineIfLambda>] sum: 'V -> float32)
    (iters: int64)
    (x: float32)
    =
    let m, a = splat (1.0f + 1e-7f * x), splat 1e-8f
    let mutable s0, s1, s2, s3 = splat x, splat x, splat x, splat x
    let mutable s4, s5, s6, s7 = s0, s1, s2, s3
    let mutable s8, s9, s10, s11 = s0, s1, s2, s3
    let mutable i = 0L

    while i < iters do
        s0 <- fma s0 m a
        s1 <- fma s1 m a
        s2 <- fma s2 m a
        s3 <- fma s3 m a
        s4 <- fma s4 m a
        s5 <- fma s5 m a
        s6 <- fma s6 m a
        s7 <- fma s7 m a
        s8 <- fma s8 m a
        s9 <- fma s9 m a
        s10 <- fma s10 m a
        s11 <- fma s11 m a
        i <- i + 1L

    sum (add (add (add (add s0 s1) (add s2 s3)) (add (add s4 s5) (add s6 s7))) (add (add s8 s9) (add s10 s11)))

[<MethodImpl(MethodImplOptions.NoInlining)>]
let private fma512 (iters: int64) (x: float32) =
    fmaChains
        (fun (v: float32) -> Vector512.Create v)
        (fun s m a -> Avx512F.FusedMultiplyAdd(s, m, a))
        (fun a b -> a + b)
        (fun v -> Vector512.Sum v)
        iters
        x

[<MethodImpl(MethodImplOptions.NoInlining)>]
let private fma256 (iters: int64) (x: float32) =
    fmaChains
        (fun (v: float32) -> Vector256.Create v)
        (fun s m a -> Fma.MultiplyAdd(s, m, a))
        (fun a b -> a + b)
        (fun v -> Vector256.Sum v)
        iters
        x

/// The widest FMA path the JIT takes here: its name, float32 lanes, and the loop.
let private fmaPath () =
    if Vector512.IsHardwareAccelerated && Avx512F.IsSupported then
        "avx512", 16, fma512
    elif Fma.IsSupported then
        "avx2", 8, fma256
    else
        failwith "bench peak: the FMA peak needs AVX2+FMA or AVX-512 (this CPU or DOTNET_Enable* has neither)"

/// float32 GFLOP/s of `threads` threads running the FMA loop for about `seconds`; the median of
/// `reps`. float64 runs at half of it on these FMA units (half the lanes, same throughput), so it
/// is printed as such rather than measured again.
let private fmaPeak (threads: int) (seconds: float) (reps: int) =
    let _, lanes, loop = fmaPath ()
    loop 1_000_000L 1.0f |> ignore
    // Calibrate the iterations to the duration on one thread.
    let probe = 20_000_000L
    let sw = Stopwatch.StartNew()
    loop probe 1.0f |> ignore
    let iters = max probe (int64 (float probe * seconds / sw.Elapsed.TotalSeconds))
    let sink = Array.zeroCreate<float32> threads

    let rates =
        Array.init reps (fun _ ->
            let t = onThreads threads (fun i -> sink[i] <- loop iters (float32 i))
            float threads * float iters * 12.0 * float lanes * 2.0 / t / 1e9)

    if Array.exists Single.IsNaN sink then
        failwith "unreachable: keeps the FMA results alive"

    (Array.sort rates)[reps / 2]

/// GB/s of a triad a <- b + s · c (STREAM's count: 3 arrays × 4 bytes per element, the write's
/// line fill not counted) and of a read-only sum over one array, on `threads` threads, each
/// over its own third of arrays of `mib` MiB each; the medians of `reps`.
let private bandwidth (threads: int) (mib: int) (reps: int) =
    let n = mib * 1024 * 1024 / 4
    let a, b, c = Array.zeroCreate<float32> n, Array.create n 1.0f, Array.create n 2.0f

    let part i =
        (i * n / threads), ((i + 1) * n / threads - i * n / threads)

    let triad () =
        onThreads threads (fun i ->
            let lo, len = part i

            TensorPrimitives.MultiplyAdd(ReadOnlySpan(c, lo, len), 3.0f, ReadOnlySpan(b, lo, len), Span(a, lo, len)))

    let sums = Array.zeroCreate<float32> threads

    // Four independent sums, so the loop waits on memory rather than on the adds' latency.
    let sumOf (lo: int) (len: int) =
        let v = MemoryMarshal.Cast<float32, Vector<float32>>(ReadOnlySpan(b, lo, len))

        let mutable s0, s1, s2, s3 =
            Vector<float32>.Zero, Vector<float32>.Zero, Vector<float32>.Zero, Vector<float32>.Zero

        let mutable k = 0

        while k + 4 <= v.Length do
            s0 <- s0 + v[k]
            s1 <- s1 + v[k + 1]
            s2 <- s2 + v[k + 2]
            s3 <- s3 + v[k + 3]
            k <- k + 4

        Vector.Sum(s0 + s1 + s2 + s3)

    let readSum () =
        onThreads threads (fun i ->
            let lo, len = part i
            sums[i] <- sumOf lo len)

    triad () |> ignore
    readSum () |> ignore
    let median (xs: float[]) = (Array.sort xs)[xs.Length / 2]
    let triadGBs = Array.init reps (fun _ -> 3.0 * 4.0 * float n / triad () / 1e9)
    let readGBs = Array.init reps (fun _ -> 4.0 * float n / readSum () / 1e9)
    median triadGBs, median readGBs

/// `bench peak [--threads T] [--seconds S] [--reps R] [--mib M]`: one line per thread count.
let run (argv: string[]) =
    let maxThreads = int (arg argv "--threads" (string Environment.ProcessorCount))
    let seconds = float (arg argv "--seconds" "0.5")
    let reps = int (arg argv "--reps" "5")
    let mib = int (arg argv "--mib" "256")

    if maxThreads < 1 || seconds <= 0.0 || reps < 1 || mib < 16 then
        eprintfn "bench peak: --threads >= 1, --seconds > 0, --reps >= 1 and --mib >= 16 (got %d, %g, %d, %d)" maxThreads seconds reps mib
        2
    else
        let path, lanes, _ = fmaPath ()
        printfn "# peak: fma path %s (%d float32 lanes), %d cores, arrays of %d MiB" path lanes Environment.ProcessorCount mib

        for t in 1..maxThreads do
            let f32 = fmaPeak t seconds reps
            let triad, read = bandwidth t mib reps

            printfn "peak threads=%d fma_f32_gflops=%.1f fma_f64_gflops=%.1f triad_gbs=%.1f read_gbs=%.1f" t f32 (f32 / 2.0) triad read

        0
