/// Benchmark entry point: a small dispatcher of subcommands.  With no subcommand (or `bdn`), or when the first
/// argument is a BenchmarkDotNet option, all arguments go to BenchmarkDotNet's switcher.
module SnnFunc.Bench.Program

open BenchmarkDotNet.Running

/// Subcommand name -> handler (receives the remaining arguments, returns the exit code).  Add new ones here.
let private commands: (string * (string[] -> int)) list =
    [
        "gemm", GemmBench.run
        "w1", W1Bench.run
        "ops", OpsBench.run
        "w1-profile", W1Bench.profile
        "conv", ConvBench.run
        "conv-profile", ConvBench.profile
        "events", EventBench.run
        "eventsmnist", EventBench.mnistOnly
        "eventtrain", EventTrainingBench.run
        "mnist16-infer", Mnist16InferBench.run
        "peak", PeakBench.run
    ]

let private runBdn (argv: string[]) =
    BenchmarkSwitcher.FromAssembly(typeof<GemmBenchmarks>.Assembly).Run(argv)
    |> ignore

    0

[<EntryPoint>]
let main argv =
    if argv.Length = 0 || argv[0].StartsWith "-" then
        runBdn argv
    elif argv[0] = "bdn" then
        runBdn argv[1..]
    else
        match List.tryFind (fun (name, _) -> name = argv[0]) commands with
        | Some(_, run) -> run argv[1..]
        | None ->
            eprintfn "unknown subcommand '%s'; known: bdn, %s" argv[0] (commands |> List.map fst |> String.concat ", ")
            2
