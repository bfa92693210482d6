/// `mnist16-infer`: MNIST16 inference over the 2000 test images in patterns per second, one line
/// with `patterns_per_s=`: the time-stepped network of samples/Mnist16 (256 -> 246 LIF -> 10 LI,
/// 30 steps of 1 ms, log-latency coding; Graph.infer in batches, recording the readout; `--mode
/// stepped-run` the same with Graph.run, the training path), or with `--mode event` the
/// event-driven network of samples/Mnist16Event (256 -> 128 LIF -> 10 LI, Events.run; the fixed
/// workload of `eventsmnist`). Weights random (each sample's initialisation) or, with
/// `--checkpoint`, a sample's trained ones. The inputs are encoded once, before the timing.
module Mnist16InferBench

open System
open System.Diagnostics
open SnnFunc
open SnnFunc.Data

let private arg (argv: string[]) name fallback =
    match Array.tryFindIndex ((=) name) argv with
    | Some i when i + 1 < argv.Length -> argv[i + 1]
    | _ -> fallback

/// The median of `reps` timed calls after two warm-ups, wall clock and the process's CPU time, in
/// seconds; and the last call's result.
let private timed (reps: int) (f: unit -> 'T) =
    f () |> ignore
    let mutable last = f ()
    let proc = Process.GetCurrentProcess()

    let runs =
        Array.init reps (fun _ ->
            proc.Refresh()
            let cpu0 = proc.TotalProcessorTime
            let sw = Stopwatch.StartNew()
            last <- f ()
            let wall = sw.Elapsed.TotalSeconds
            proc.Refresh()
            wall, (proc.TotalProcessorTime - cpu0).TotalSeconds)

    let median (xs: float[]) = (Array.sort xs)[xs.Length / 2]
    median (Array.map fst runs), median (Array.map snd runs), last

let private stepped (infer: bool) (batch: int) (reps: int) (checkpoint: string option) =
    let data =
        Mnist.loadNpm
            { Mnist.defaults with
                Size = 16
                TrainCount = 1
                TestCount = 2000
            }

    let steps, dt = 30, 1e-3

    let net =
        Graph.empty
        |> Graph.input "x" 256
        |> Graph.population "hidden" 246 (Neuron.lif { Snn.Lif.defaults with Dt = dt })
        |> Graph.population "out" 10 (Neuron.li { Snn.Li.defaults with Dt = dt })
        |> Graph.connect "x" "hidden" (Projection.dense (Init.normalWith 5.0))
        |> Graph.connect "hidden" "out" (Projection.dense (Init.normalWith 2.0))

    let p0 = Graph.init (Random.key 0L) net

    let load p path =
        SnnFunc.Bench.EventBench.loadParams path Float32 p

    let p = checkpoint |> Option.fold load p0
    let n = data.Test.Count
    let rc = RunConfig.steps steps dt |> RunConfig.recording [ "out" ]
    let run = if infer then Graph.infer else Graph.run

    let inputs =
        [|
            for b0 in 0..batch .. n - 1 do
                let count = min batch (n - b0)
                Encode.logLatency steps dt 8e-3 0.2 (data.Test.X.Narrow(0, b0, count))
        |]

    let infer () =
        inputs
        |> Array.map (fun x ->
            let r = run net p rc (Map [ ("x", x) ])
            Decode.maxOverTime r["out"].Membrane)

    let wall, cpu, logits = timed reps infer
    let logits = Tensor.Concat(logits, 0)
    n, wall, cpu, Loss.accuracy logits data.Test.Labels

let private event (reps: int) (checkpoint: string option) =
    let n, g, p, config, inputs = SnnFunc.Bench.EventBench.mnist16Setup checkpoint

    let infer () =
        let run = Events.run g p config inputs
        run.MaxVoltage["out"]

    let wall, cpu, _ = timed reps infer
    n, wall, cpu, nan

let run (argv: string[]) : int =
    let mode = arg argv "--mode" "stepped"
    let batch = int (arg argv "--batch" "250")
    let reps = int (arg argv "--reps" "7")
    let checkpoint = Option.ofObj (arg argv "--checkpoint" null)
    Kernels.Parallelism.MaxThreads <- int (arg argv "--threads" "2")

    let n, wall, cpu, accuracy =
        match mode with
        | "stepped" -> stepped true batch reps checkpoint
        | "stepped-run" -> stepped false batch reps checkpoint
        | "event" -> event reps checkpoint
        | other -> failwith $"mnist16-infer --mode: expected stepped, stepped-run or event, got '%s{other}'"

    printfn
        "mnist16-infer mode=%s patterns=%d batch=%s threads=%d weights=%s patterns_per_s=%.0f cpu_us_per_pattern=%.2f%s"
        mode
        n
        (if mode = "event" then "all" else string batch)
        Kernels.Parallelism.MaxThreads
        (defaultArg checkpoint "random")
        (float n / wall)
        (1e6 * cpu / float n)
        (if Double.IsNaN accuracy then
             ""
         else
             $" accuracy=%.4f{accuracy}")

    0
