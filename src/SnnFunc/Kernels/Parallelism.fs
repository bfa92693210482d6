/// How many threads the kernels may use; one setting for the whole process.
namespace SnnFunc.Kernels

open System

/// Process-wide thread budget for the multi-threaded kernels (GEMM, large elementwise loops).
/// Defaults to the number of cores, or to the environment variable SNNFUNC_THREADS when set.
type Parallelism private () =
    static let mutable maxThreads =
        match Environment.GetEnvironmentVariable "SNNFUNC_THREADS" with
        | null
        | "" -> Environment.ProcessorCount
        | s ->
            match Int32.TryParse s with
            | true, n when n >= 1 -> n
            | _ -> invalidArg "SNNFUNC_THREADS" $"SNNFUNC_THREADS must be a positive integer, got '%s{s}'"

    /// The largest number of threads a kernel call may use (at least 1).
    static member MaxThreads
        with get () = maxThreads
        and set (n: int) =
            if n < 1 then
                invalidArg "MaxThreads" $"Parallelism.MaxThreads must be at least 1, got %d{n}"

            maxThreads <- n

    /// Chunks for a loop touching `work` elements: one per thread (MaxThreads) when it is large
    /// enough to pay for the hand-out (about 200,000 elements a chunk), else 1. (Four per thread
    /// made W1 a fifth slower: the transposed spike product reads all of x once per column slice.)
    static member ChunkCount(work: int64) =
        int (min (int64 maxThreads) (max 1L (work / 200_000L)))

    /// Runs body c for c in 0 .. chunks - 1 on at most MaxThreads threads (chunks are handed out as
    /// threads come free), on the calling thread alone when chunks = 1.
    static member RunChunks(chunks: int, body: int -> unit) =
        if chunks <= 1 then
            body 0
        else
            let options = Threading.Tasks.ParallelOptions(MaxDegreeOfParallelism = maxThreads)
            Threading.Tasks.Parallel.For(0, chunks, options, body) |> ignore

    /// [lo, hi) of part c of `count` items in `parts` parts, rounded to multiples of `align`.
    static member Part(count: int, align: int, c: int, parts: int) =
        let size = ((count + parts - 1) / parts + align - 1) / align * align
        min count (c * size), min count ((c + 1) * size)
