/// `gemm` subcommand: times Gemm.Sgemm / Gemm.Dgemm on n×n×n (optionally against OpenBLAS in the same run)
/// and prints machine-readable lines.
module SnnFunc.Bench.GemmBench

open System
open System.Diagnostics
open System.Threading
open SnnFunc.Kernels

type private Options =
    {
        N: int
        Threads: int
        Dtype: string
        Reps: int
        Rounds: int
        VsOpenBlas: bool
        Verbose: bool
    }

let private usage =
    "usage: gemm [--n 1024] [--threads T] [--dtype f32|f64] [--reps 15] [--rounds 3] [--vs-openblas] [--verbose]"

let private parse (argv: string[]) =
    let rec go (o: Options) args =
        match args with
        | [] -> o
        | "--n" :: v :: rest -> go { o with N = int v } rest
        | "--threads" :: v :: rest -> go { o with Threads = int v } rest
        | "--dtype" :: v :: rest -> go { o with Dtype = v } rest
        | "--reps" :: v :: rest -> go { o with Reps = int v } rest
        | "--rounds" :: v :: rest -> go { o with Rounds = int v } rest
        | "--vs-openblas" :: rest -> go { o with VsOpenBlas = true } rest
        | "--verbose" :: rest -> go { o with Verbose = true } rest
        | a :: _ -> failwith $"gemm: unknown or incomplete argument '%s{a}'\n%s{usage}"

    let o =
        go
            {
                N = 1024
                Threads = SnnFunc.Kernels.Parallelism.MaxThreads
                Dtype = "f32"
                Reps = 15
                Rounds = 3
                VsOpenBlas = false
                Verbose = false
            }
            (List.ofArray argv)

    if
        o.N < 1
        || o.Threads < 1
        || o.Reps < 1
        || o.Rounds < 1
        || (o.Dtype <> "f32" && o.Dtype <> "f64")
    then
        failwith $"gemm: invalid options\n%s{usage}"

    o

/// Median wall times (ms) of each function over `rounds` × `reps` calls.  Each function is first warmed up (at
/// least 5 calls and ~1 s, so that tiered JIT and the thread pool are settled).  Each round then times every function
/// in turn, `reps` calls in a row, and pauses 0.3 s: OpenBLAS's worker threads keep spinning for a while after a
/// call and would otherwise steal the second core from the next block.  Spreading the blocks over several rounds
/// keeps a burst of background load on this shared machine from landing on one library only.
let private medianMs (verbose: bool) (rounds: int) (reps: int) (fs: (unit -> unit)[]) =
    for f in fs do
        let sw = Stopwatch.StartNew()
        let mutable warm = 0

        while warm < 5 || sw.ElapsedMilliseconds < 1000L do
            f ()
            warm <- warm + 1

        Thread.Sleep 300

    let times = Array.init fs.Length (fun _ -> ResizeArray<float>())

    for _ in 1..rounds do
        for i in 0 .. fs.Length - 1 do
            for _ in 1..reps do
                let t0 = Stopwatch.GetTimestamp()
                fs[i]()
                times[i].Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds)

            Thread.Sleep 300

    times
    |> Array.map (fun ts ->
        if verbose then
            eprintfn "# times_ms: %s" (ts |> Seq.map (sprintf "%.3f") |> String.concat " ")

        let ts = ts.ToArray() |> Array.sort
        let k = ts.Length

        if k % 2 = 1 then
            ts[k / 2]
        else
            0.5 * (ts[k / 2 - 1] + ts[k / 2]))

let private gflops (n: int) (ms: float) =
    2.0 * float n * float n * float n / (ms * 1e6)

/// Largest |x - y| / (|x| + |y| + 1) over two result arrays: a sanity check that both libraries agree.
let private maxRelDiff (x: float[]) (y: float[]) =
    Array.fold2 (fun acc (p: float) q -> max acc (abs (p - q) / (abs p + abs q + 1.0))) 0.0 x y

let run (argv: string[]) =
    let o = parse argv
    let n = o.N
    let rng = Random 12345

    let env (name: string) =
        match Environment.GetEnvironmentVariable name with
        | null -> "<unset>"
        | v -> v

    printfn
        "# env OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s OPENBLAS_NUM_THREADS=%s cores=%d avx512=%b"
        (env "OPENBLAS_CORETYPE")
        (env "OPENBLAS_L2_SIZE")
        (env "OPENBLAS_NUM_THREADS")
        Environment.ProcessorCount
        System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated

    let blasOk = o.VsOpenBlas && OpenBlas.available.Value

    if blasOk then
        OpenBlas.openblas_set_num_threads o.Threads

    // (our call, OpenBLAS call, our result, OpenBLAS result) for the chosen element type.
    let ours, blas, resultOurs, resultBlas =
        if o.Dtype = "f32" then
            let a = Array.init (n * n) (fun _ -> float32 (rng.NextDouble() - 0.5))
            let b = Array.init (n * n) (fun _ -> float32 (rng.NextDouble() - 0.5))
            let c = Array.zeroCreate<float32> (n * n)
            let c2 = Array.zeroCreate<float32> (n * n)

            (fun () -> Gemm.Sgemm(false, false, n, n, n, a, 0, n, b, 0, n, c, 0, n, false, o.Threads)),
            (fun () -> OpenBlas.cblas_sgemm (OpenBlas.RowMajor, OpenBlas.NoTrans, OpenBlas.NoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c2, n)),
            (fun () -> Array.map float c),
            (fun () -> Array.map float c2)
        else
            let a = Array.init (n * n) (fun _ -> rng.NextDouble() - 0.5)
            let b = Array.init (n * n) (fun _ -> rng.NextDouble() - 0.5)
            let c = Array.zeroCreate<float> (n * n)
            let c2 = Array.zeroCreate<float> (n * n)

            (fun () -> Gemm.Dgemm(false, false, n, n, n, a, 0, n, b, 0, n, c, 0, n, false, o.Threads)),
            (fun () -> OpenBlas.cblas_dgemm (OpenBlas.RowMajor, OpenBlas.NoTrans, OpenBlas.NoTrans, n, n, n, 1.0, a, n, b, n, 0.0, c2, n)),
            (fun () -> c),
            (fun () -> c2)

    let medians =
        medianMs o.Verbose o.Rounds o.Reps (if blasOk then [| ours; blas |] else [| ours |])

    let ours = medians[0]

    printfn "gemm dtype=%s n=%d threads=%d gflops=%.1f median_ms=%.4f" o.Dtype n o.Threads (gflops n ours) ours

    if blasOk then
        let ms = medians[1]

        printfn
            "openblas dtype=%s n=%d threads=%d gflops=%.1f median_ms=%.4f core=%s"
            o.Dtype
            n
            o.Threads
            (gflops n ms)
            ms
            (OpenBlas.coreName ())

        printfn "ratio=%.2f max_rel_diff=%.2e" (ms / ours) (maxRelDiff (resultOurs ()) (resultBlas ()))
    elif o.VsOpenBlas then
        printfn "openblas unavailable: could not load libopenblas.so.0; comparison skipped"

    0
