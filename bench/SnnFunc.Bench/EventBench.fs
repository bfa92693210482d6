/// `events`: the event-driven kernel's throughput — inference of a 256-128-10 LIF network on
/// latency-coded patterns, and EventProp training steps of a Yin-Yang-sized 5-200-3 network.
module SnnFunc.Bench.EventBench

open System
open SnnFunc

let private lifNeuron =
    Neuron.lif
        { Snn.Lif.defaults with
            TauMem = 20e-3
            TauSyn = 5e-3
            VTh = 1.0
            Dt = 1e-4
        }

/// Latency code: each input neuron spikes at most once, at (1 − x)·20 ms for x > 0.1.
let private latency (rng: Random) (batch: int) (n: int) =
    let cap = n
    let times = Array.create (batch * cap) Double.PositiveInfinity
    let neurons = Array.create (batch * cap) -1
    let counts = Array.zeroCreate batch

    for b in 0 .. batch - 1 do
        let evs =
            [|
                for m in 0 .. n - 1 do
                    let x = rng.NextDouble()

                    if x > 0.1 then
                        (1.0 - x) * 20e-3, m
            |]
            |> Array.sortBy fst

        evs
        |> Array.iteri (fun k (t, m) ->
            times[b * cap + k] <- t
            neurons[b * cap + k] <- m)

        counts[b] <- evs.Length

    EventBuffer(
        Tensor.FromArray(times, batch, cap),
        Tensor.FromArray(neurons, batch, cap),
        Tensor.FromArray(counts, batch),
        Tensor.FromArray(Array.zeroCreate<int> batch, batch),
        [| n |]
    )

let private weights (rng: Random) (a: int) (b: int) (mean: float) (sd: float) =
    let w =
        Array.init (a * b) (fun _ -> mean + sd * (rng.NextDouble() * 2.0 - 1.0) * sqrt 3.0)

    Init.ofTensor (Tensor.FromArray(w, a, b))

/// Arrays "params/<node>/<leaf>" of a sample's checkpoint into p, converted to dtype (the node's
/// name escaped as KeyPath.toName does; other arrays, such as the optimizer's, are skipped); an
/// array p does not have, or of another shape, is an error naming it.
let internal loadParams (path: string) (dtype: DType) (p: GraphParams) : GraphParams =
    Npz.load path
    |> Map.fold
        (fun (acc: GraphParams) name (t: Tensor) ->
            match name.Split '/' with
            | [| "params"; node; leaf |] ->
                let node = Uri.UnescapeDataString node

                match acc.TryFind node |> Option.bind (fun m -> m.TryFind leaf) with
                | Some old when old.Shape = t.Shape -> acc.Add(node, acc[node].Add(leaf, t.Convert dtype))
                | _ -> failwith $"--checkpoint: {path} holds {name} {t.Shape}, which this network does not have"
            | _ -> acc)
        p

/// The MNIST16 inference workload: the 2000 test images latency-coded (pixels above theta spike at
/// (1 − u)·20 ms), a 256-128-10 LIF → LI network, TEnd 40 ms. Without a checkpoint: theta 0.2 and
/// the initialisation N(0.15, 0.1) / N(0.2, 0.37) (samples/Mnist16Event's coding and network
/// before its tuning, a fixed workload); with one (the sample's `--checkpoint`): theta 0.03 and the
/// trained weights, the sample's inference.
let internal mnist16Setup (checkpoint: string option) =
    let data =
        SnnFunc.Data.Mnist.loadNpm
            { SnnFunc.Data.Mnist.defaults with
                Size = 16
                TrainCount = 1
                TestCount = 2000
            }

    let x = data.Test.X.Minimum(Tensor.Scalar(1.0, data.Test.X.DType)).Convert Float64
    let theta = if checkpoint.IsSome then 0.03 else 0.2

    let ev =
        EventBuffer.latencyWith
            {
                TEarly = 20e-3
                TLate = 0.0
                Threshold = Some(theta + 1e-9)
                BiasTime = None
            }
            x

    let g =
        Graph.empty
        |> Graph.input "x" 256
        |> Graph.population
            "hidden"
            128
            (Neuron.lif
                { Snn.Lif.defaults with
                    TauMem = 20e-3
                    TauSyn = 5e-3
                    VTh = 1.0
                })
        |> Graph.population
            "out"
            10
            (Neuron.li
                { Snn.Li.defaults with
                    TauMem = 20e-3
                    TauSyn = 5e-3
                })
        |> Graph.connect "x" "hidden" (Projection.dense (Init.gaussian 0.15 0.1))
        |> Graph.connect "hidden" "out" (Projection.dense (Init.gaussian 0.2 0.37))

    let p0 = Graph.initAs Float64 (Random.key 1L) g

    let p = checkpoint |> Option.fold (fun p path -> loadParams path Float64 p) p0

    let config =
        { Events.defaults with
            TEnd = 40e-3
            Capacity = 512
        }

    data.Test.Count, g, p, config, Map [ "x", ev ]

let private perPattern (n: int) (b: EventBuffer) =
    float (Array.sum (b.Count.ToInt32Array())) / float n

let private med (a: seq<float>) =
    let s = Array.sort (Array.ofSeq a)
    s[s.Length / 2]

/// The fixed MNIST16 workload (mnist16Setup); the population-by-population path against the
/// general event loop, in interleaved rounds (medians of each and of their ratio).
let private mnist16 () =
    let count, g, p, config, inputs = mnist16Setup None
    let n = float count
    let first = Events.run g p config inputs
    let layered = ResizeArray<float>()
    let general = ResizeArray<float>()

    for _ in 1..7 do
        layered.Add(Timing.median 1 3 (fun () -> Events.run g p config inputs |> ignore))
        general.Add(Timing.median 0 1 (fun () -> Events.runWith false g p config inputs |> ignore))

    let ratio = med (Seq.map2 (fun l g -> g / l) layered general)

    printfn
        "events MNIST16 256-128-10 inference (%d test images, %.1f input and %.1f hidden spikes/pattern, %d threads): layered %.0f patterns/s, general loop %.0f patterns/s, ratio %.1fx"
        count
        (perPattern count inputs["x"])
        (perPattern count first["hidden"])
        Kernels.Parallelism.MaxThreads
        (n / med layered)
        (n / med general)
        ratio

/// `eventsmnist [checkpoint.npz | -] [reps] [threads]`: the MNIST16 inference alone (the layered
/// path), `reps` timed runs after two warm-ups (default 9); prints every run's patterns/s and the
/// median, for side-by-side comparisons of builds.
let mnistOnly (argv: string[]) : int =
    let checkpoint =
        if argv.Length > 0 && argv[0] <> "-" then
            Some argv[0]
        else
            None

    let reps = if argv.Length > 1 then int argv[1] else 9

    if argv.Length > 2 then
        Kernels.Parallelism.MaxThreads <- int argv[2]

    let count, g, p, config, inputs = mnist16Setup checkpoint
    let first = Events.run g p config inputs
    Events.run g p config inputs |> ignore

    // Wall time and the process's CPU time of each run: on a shared machine the CPU time per
    // pattern is the steadier figure (it does not count the time other processes hold the cores).
    let proc = Diagnostics.Process.GetCurrentProcess()

    let runs =
        Array.init reps (fun _ ->
            proc.Refresh()
            let cpu0 = proc.TotalProcessorTime
            let sw = Diagnostics.Stopwatch.StartNew()
            Events.run g p config inputs |> ignore
            let wall = sw.Elapsed.TotalSeconds
            proc.Refresh()
            float count / wall, 1e6 * (proc.TotalProcessorTime - cpu0).TotalSeconds / float count)

    let rates = Array.map fst runs

    printfn
        "eventsmnist %s: %d patterns, %.1f input and %.1f hidden spikes/pattern, %d threads: median %.0f patterns/s, %.2f CPU-us/pattern (runs %s)"
        (defaultArg checkpoint "fixed")
        count
        (perPattern count inputs["x"])
        (perPattern count first["hidden"])
        Kernels.Parallelism.MaxThreads
        (med rates)
        (med (Array.map snd runs))
        (rates |> Array.map (sprintf "%.0f") |> String.concat " ")

    0

let run (argv: string[]) : int =
    let batch = if argv.Length > 0 then int argv[0] else 4000
    let rng = Random(1)
    mnist16 ()

    // 256-128-10 inference
    let g =
        Graph.empty
        |> Graph.input "x" 256
        |> Graph.population "h" 128 lifNeuron
        |> Graph.population "out" 10 lifNeuron
        |> Graph.connect "x" "h" (Projection.dense (weights rng 256 128 0.05 0.1))
        |> Graph.connect "h" "out" (Projection.dense (weights rng 128 10 0.25 0.2))

    let p = Graph.initAs Float64 (Random.key 0L) g
    let inputs = Map [ "x", latency rng batch 256 ]

    let config =
        { Events.defaults with
            TEnd = 30e-3
            Capacity = 256
        }

    let first = Events.run g p config inputs

    let hidden =
        float (Array.sum (first["h"].Count.ToInt32Array())) / float (batch * 128)

    let out = float (Array.sum (first["out"].Count.ToInt32Array())) / float (batch * 10)
    let inSpikes = float (Array.sum (inputs["x"].Count.ToInt32Array())) / float batch
    let secs = Timing.median 1 5 (fun () -> Events.run g p config inputs |> ignore)

    printfn
        "events 256-128-10 inference: %d patterns in %.4f s = %.0f patterns/s (inputs %.0f spikes/pattern, hidden %.2f and output %.2f spikes/neuron, %d threads)"
        batch
        secs
        (float batch / secs)
        inSpikes
        hidden
        out
        Kernels.Parallelism.MaxThreads

    // Yin-Yang-sized EventProp training: 5-200-3, TTFS cross-entropy, batch 32
    let gy =
        Graph.empty
        |> Graph.input "x" 5
        |> Graph.population "h" 200 lifNeuron
        |> Graph.population "out" 3 lifNeuron
        |> Graph.connect "x" "h" (Projection.dense (weights rng 5 200 1.5 0.78))
        |> Graph.connect "h" "out" (Projection.dense (weights rng 200 3 0.93 0.1))

    let py = Graph.initAs Float64 (Random.key 1L) gy
    let yb = 32
    let data = SnnFunc.Data.YinYang.generate (Random.key 2L) yb

    let yinYangInputs =
        let xs = data.X.ToDoubleArray()
        let k: int = xs.Length / yb

        let times =
            Array.init (yb * 5) (fun q -> let b, m = q / 5, q % 5 in if m < 4 && m < k then xs[b * k + m] * 30e-3 else 0.0)

        let neurons = Array.init (yb * 5) (fun q -> q % 5)
        // sorted per sample
        for b in 0 .. yb - 1 do
            let idx = Array.init 5 id |> Array.sortBy (fun m -> times[b * 5 + m])
            let t = idx |> Array.map (fun m -> times[b * 5 + m])
            Array.blit t 0 times (b * 5) 5
            Array.blit idx 0 neurons (b * 5) 5

        EventBuffer(
            Tensor.FromArray(times, yb, 5),
            Tensor.FromArray(neurons, yb, 5),
            Tensor.FromArray(Array.create yb 5, yb),
            Tensor.FromArray(Array.zeroCreate<int> yb, yb),
            [| 5 |]
        )

    let labels =
        Tensor.FromArray(Array.init (yb * 3) (fun q -> if q % 3 = q / 3 % 3 then 1.0 else 0.0), yb, 3)

    let cfgY =
        { Events.defaults with
            TEnd = 30e-3
            Capacity = 256
            Gradient = EventProp
        }

    let loss (p: GraphParams) =
        let o = Events.run gy p cfgY (Map [ "x", yinYangInputs ])
        let t = Events.firstSpikeTimes o["out"]
        let t = Tensor.Where(t.Lt(1.0), t, Tensor.Full(t.Shape, 30e-3, Float64))
        let z = -(t / 0.5e-3)
        let logp = z - (z.Exp().Sum(1, true)).Log()
        -((logp * labels).Sum()) / float yb

    let hy = Events.run gy py cfgY (Map [ "x", yinYangInputs ])
    let hiddenY = float (Array.sum (hy["h"].Count.ToInt32Array())) / float (yb * 200)
    let secsY = Timing.median 1 5 (fun () -> Ad.grad loss py |> ignore)

    printfn
        "events 5-200-3 EventProp training step (batch %d): %.5f s = %.0f samples/s (hidden %.2f spikes/neuron)"
        yb
        secsY
        (float yb / secsY)
        hiddenY

    0
