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
