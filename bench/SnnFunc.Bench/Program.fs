/// Benchmark entry point: quick side-by-side subcommands, or BenchmarkDotNet suites.
module Program

[<EntryPoint>]
let main argv =
    match List.ofArray argv with
    | "w1" :: _ -> W1Bench.run argv
    | "ops" :: _ -> OpsBench.run argv
    | _ ->
        eprintfn "usage: SnnFunc.Bench w1 [--threads N] [--reps N] [--generic]"
        2
