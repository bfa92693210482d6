/// BenchmarkDotNet benchmarks of the packed GEMM (`dotnet run -c Release --project bench/SnnFunc.Bench -- bdn --filter *Gemm*`).
namespace SnnFunc.Bench

open BenchmarkDotNet.Attributes
open SnnFunc.Kernels

[<MemoryDiagnoser>]
type GemmBenchmarks() =
    let mutable a32: float32[] = [||]
    let mutable b32: float32[] = [||]
    let mutable c32: float32[] = [||]
    let mutable a64: float[] = [||]
    let mutable b64: float[] = [||]
    let mutable c64: float[] = [||]

    [<Params(64, 256, 1024)>]
    member val N = 0 with get, set

    [<Params(1, 2)>]
    member val Threads = 1 with get, set

    [<GlobalSetup>]
    member this.Setup() =
        let n = this.N
        let rng = System.Random 42
        a32 <- Array.init (n * n) (fun _ -> float32 (rng.NextDouble() - 0.5))
        b32 <- Array.init (n * n) (fun _ -> float32 (rng.NextDouble() - 0.5))
        c32 <- Array.zeroCreate (n * n)
        a64 <- Array.init (n * n) (fun _ -> rng.NextDouble() - 0.5)
        b64 <- Array.init (n * n) (fun _ -> rng.NextDouble() - 0.5)
        c64 <- Array.zeroCreate (n * n)

    [<Benchmark>]
    member this.Sgemm() =
        let n = this.N
        Gemm.Sgemm(false, false, n, n, n, a32, 0, n, b32, 0, n, c32, 0, n, false, this.Threads)

    [<Benchmark>]
    member this.Dgemm() =
        let n = this.N
        Gemm.Dgemm(false, false, n, n, n, a64, 0, n, b64, 0, n, c64, 0, n, false, this.Threads)
