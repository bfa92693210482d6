/// The W1 workload of shared/reference/workloads.md: one training step (forward, backward, Adam) of
/// a 256-246-10 current-based LIF network over 100 steps with batch 64, timed as samples per second.
module W1Bench

open System
open System.Diagnostics
open SnnFunc

/// W1's sizes and constants.
let batch, steps, inputs, hidden, outputs = 64, 100, 256, 246, 10

let lifParams =
    { Snn.Lif.defaults with
        Dt = 1e-3
        TauSyn = 5e-3
        TauMem = 10e-3
        VTh = 1.0
        VReset = 0.0
        Reset = Snn.ToValue
        Surrogate = Surrogate.superSpike 100.0
    }

let liParams =
    { Snn.Li.defaults with
        Dt = 1e-3
        TauSyn = 5e-3
        TauMem = 10e-3
    }

/// Inputs: every input neuron of every sample fires once, at a uniformly random step in [0, T).
let makeInput (seed: int) : Tensor * int[] =
    let rng = Random seed
    let x = Array.zeroCreate<float32> (steps * batch * inputs)

    for b in 0 .. batch - 1 do
        for i in 0 .. inputs - 1 do
            let t = rng.Next steps
            x[(t * batch + b) * inputs + i] <- 1.0f

    Tensor.FromArray(x, steps, batch, inputs), Array.init batch (fun _ -> rng.Next outputs)

/// W1 ~ N(0, 1) · 4 / sqrt(NI), W2 ~ N(0, 1) · 4 / sqrt(NH).
let initWeights (seed: int64) : Tensor * Tensor =
    let k1, k2 = Random.split (Random.key seed)

    Random.normal k1 [| inputs; hidden |] * (4.0 / sqrt (float inputs)),
    Random.normal k2 [| hidden; outputs |] * (4.0 / sqrt (float hidden))

/// The loss with the fused layers (the library's fast path).
let lossFused (x: Tensor) (labels: int[]) (w1: Tensor, w2: Tensor) =
    let z, _ = Fused.lif lifParams (Fused.spikeMatmul x w1)
    let vo = Fused.li liParams (Fused.spikeMatmul z w2)
    Loss.crossEntropy (vo.Max 0) labels

/// The same loss written step by step with the generic step functions and Ad.scan.
let lossGeneric (x: Tensor) (labels: int[]) (w1: Tensor, w2: Tensor) =
    let currents = x.MatMul w1

    let lifStep, liStep = Snn.Lif.stepOf lifParams, Snn.Li.stepOf liParams

    let step (h: Snn.Lif.State, o: Snn.Li.State) (c: Tensor) =
        let h', z = lifStep h c
        let o', v = liStep o (z.MatMul w2)
        (h', o'), v

    let init =
        Snn.Lif.init [| batch; hidden |] Float32, Snn.Li.init [| batch; outputs |] Float32

    let _, vo = Ad.scan step init currents
    Loss.crossEntropy (vo.Max 0) labels

/// Runs W1 and prints one line: `w1 variant=... samples_per_s=... loss=...`.
let run (argv: string[]) =
    let arg name fallback =
        match Array.tryFindIndex ((=) name) argv with
        | Some i when i + 1 < argv.Length -> argv[i + 1]
        | _ -> fallback

    let threads = int (arg "--threads" "2")
    let reps = int (arg "--reps" "15")
    let generic = Array.contains "--generic" argv
    Kernels.Parallelism.MaxThreads <- threads
    let x, labels = makeInput 1
    let tx = Optim.adam 1e-3
    let mutable w = initWeights 2L
    let mutable state = Optim.init tx w
    let loss = if generic then lossGeneric x labels else lossFused x labels
    let mutable lastLoss = nan

    let trainStep () =
        let l, g = Ad.valueAndGrad loss w
        let u, s = Optim.update tx g state w
        w <- Optim.applyUpdates w u
        state <- s
        lastLoss <- l.ToScalar()

    let initialLoss = (loss w).ToScalar()

    let median = Timing.median 3 reps trainStep

    let spikes =
        (fst (Fused.lif lifParams (Fused.spikeMatmul x (fst w)))).Sum().ToScalar()
        / float batch

    printfn
        "w1 variant=%s threads=%d samples_per_s=%.1f median_ms=%.2f initial_loss=%.4f loss=%.4f hidden_spikes_per_sample=%.1f"
        (if generic then "generic" else "fused")
        threads
        (float batch / median)
        (median * 1000.0)
        initialLoss
        lastLoss
        spikes

    0

/// Times the parts of one fused W1 training step (median milliseconds of repeated runs):
/// `w1-profile [--threads T] [--clock wall|cpu]` (with --threads 1 --clock cpu, the time on one core
/// without the slices other processes take on a loaded machine).
let profile (argv: string[]) =
    let arg name fallback =
        match Array.tryFindIndex ((=) name) argv with
        | Some i when i + 1 < argv.Length -> argv[i + 1]
        | _ -> fallback

    Kernels.Parallelism.MaxThreads <- int (arg "--threads" "2")
    let clock = Timing.Clock.Parse(arg "--clock" "wall")
    let x, labels = makeInput 1
    let w1, w2 = initWeights 2L

    let time name (f: unit -> 'a) =
        printfn "w1-profile %s ms=%.2f" name (1000.0 * Timing.medianBy clock 20 31 (f >> ignore))

    let c = Fused.spikeMatmul x w1
    let z, v = Fused.lif lifParams c
    let co = Fused.spikeMatmul z w2
    time "input_spikeMatmul" (fun () -> Fused.spikeMatmul x w1)
    time "lif_forward" (fun () -> Fused.lif lifParams c)
    time "hidden_spikeMatmul" (fun () -> Fused.spikeMatmul z w2)
    time "li_forward" (fun () -> Fused.li liParams co)
    time "lif_jvp" (fun () -> Ad.jvp (Fused.lif lifParams >> fst) c c)
    let loss = lossFused x labels
    time "forward" (fun () -> loss (w1, w2))
    let l, pullback = Ad.vjp loss (w1, w2)
    time "vjp_forward" (fun () -> Ad.vjp loss (w1, w2))
    time "pullback" (fun () -> pullback (Tensor.OnesLike l))
    time "dense_ct_w2T" (fun () -> co.MatMul(w2, false, true))
    time "valueAndGrad" (fun () -> Ad.valueAndGrad loss (w1, w2))
    let tx = Optim.adam 1e-3
    let state = Optim.init tx (w1, w2)
    let _, g = Ad.valueAndGrad loss (w1, w2)
    time "adam_update" (fun () -> Optim.update tx g state (w1, w2))
    ignore v
    0
