/// `eventtrain`: event-driven EventProp training against time-stepped surrogate-gradient training
/// (BPTT) of the same Yin-Yang 5-200-3 LIF network — throughput of a training step, and the memory
/// a gradient call needs as the number of time steps grows.
///
///   eventtrain [batch] [rounds]      (defaults 32 and 15)
module SnnFunc.Bench.EventTrainingBench

open System
open System.Diagnostics
open System.IO
open SnnFunc
open SnnFunc.Data

/// The latency code of samples/YinYangEvent: (x, y, 1 − x, 1 − y) spike once at u · 30 ms, the bias at 0.
let private tCode = 30e-3

/// The simulated interval (60 ms, as samples/YinYangEvent).
let private tEnd = 60e-3

// Wunderlich & Pehle's TTFS loss, as samples/YinYangEvent.
let private tau0, tau1, alpha = 0.5e-3, 6.4e-3, 3e-3

let private hidden = 200

/// The LIF of the sample (τm 20 ms, τs 5 ms, threshold 1, reset to 0) with the time step `dt`; the
/// time-stepped path uses its surrogate (SuperSpike(100), Snn.Lif.defaults), the event path ignores both.
let private lif (dt: float) =
    Neuron.lif
        { Snn.Lif.defaults with
            TauMem = 20e-3
            TauSyn = 5e-3
            VTh = 1.0
            VReset = 0.0
            VLeak = 0.0
            Dt = dt
        }

/// The 5-200-3 network of samples/YinYangEvent; the weight draws do not depend on dt (each node
/// draws from its own key), so one initialisation serves every graph.
let private graph (dt: float) =
    Graph.empty
    |> Graph.input "x" 5
    |> Graph.population "hidden" hidden (lif dt)
    |> Graph.population "out" YinYang.classes (lif dt)
    |> Graph.connect "x" "hidden" (Projection.dense (Init.gaussian 1.5 0.78))
    |> Graph.connect "hidden" "out" (Projection.dense (Init.gaussian 0.93 0.1))

let private isWeights (node: string) = node.Contains "->"

/// The workload: initial parameters (Float64, key 0), a Yin-Yang batch as events, its labels.
type private Setup =
    {
        P0: GraphParams
        Weights: GraphParams
        Events: EventBuffer
        Labels: int[]
        Batch: int
    }

let private setup (batch: int) =
    let p0 = Graph.initAs DType.Float64 (Random.key 0L) (graph 1e-4)
    let data = YinYang.generate (Random.key 2L) batch

    {
        P0 = p0
        Weights = p0 |> Map.filter (fun k _ -> isWeights k)
        Events = EventBuffer.latency 0.0 tCode (data.X.Convert DType.Float64)
        Labels = data.Labels
        Batch = batch
    }

let private full (s: Setup) (w: GraphParams) =
    Map.fold (fun (acc: GraphParams) k v -> acc.Add(k, v)) s.P0 w

let private eventConfig =
    { Events.defaults with
        TEnd = tEnd
        Capacity = 512
        Gradient = EventProp
    }

/// (a) Event-driven: Events.run, TTFS cross-entropy on the output's first spike times (EventProp adjoint).
let private eventLoss (s: Setup) (w: GraphParams) =
    let g = graph 1e-4
    let run = Events.run g (full s w) eventConfig (Map [ "x", s.Events ])
    EventLoss.ttfsCrossEntropy tau0 tau1 alpha tEnd (EventBuffer.firstSpikeTimes run["out"]) s.Labels

/// (b) Time-stepped: the same events binned to steps of dt (EventBuffer.toDense), Graph.run with
/// surrogate spikes, cross-entropy over the output layer's maximum membrane over time
/// (EventLoss.maxVoltageCrossEntropy; a first-spike time has no surrogate in the stepped path).
let private steppedLossAs (dtype: DType) (s: Setup) (dt: float) =
    let steps = int (Math.Round(tEnd / dt))
    let g = graph dt
    let x = (EventBuffer.toDense s.Events steps dt).Convert dtype
    let config = RunConfig.steps steps dt |> RunConfig.recording [ "hidden"; "out" ]

    fun (w: GraphParams) ->
        let r = Graph.run g (full s w) config (Map [ "x", x ])
        EventLoss.maxVoltageCrossEntropy (Decode.maxOverTime r["out"].Membrane) s.Labels

let private steppedLoss = steppedLossAs DType.Float64

/// The parameters in another dtype (the same draws, rounded).
let private convert (dtype: DType) (p: GraphParams) : GraphParams =
    p |> Map.map (fun _ m -> m |> Map.map (fun _ (t: Tensor) -> t.Convert dtype))

/// Mean spikes per neuron and sample of the hidden and output layers, event-driven and time-stepped.
let private activity (s: Setup) (dt: float) =
    let per (n: int) (x: float) = x / float (s.Batch * n)
    let ev = Events.run (graph 1e-4) s.P0 eventConfig (Map [ "x", s.Events ])
    let steps = int (Math.Round(tEnd / dt))

    let r =
        Graph.run (graph dt) s.P0 (RunConfig.steps steps dt) (Map [ "x", EventBuffer.toDense s.Events steps dt ])

    let count (b: EventBuffer) =
        float (Array.sum (b.Count.ToInt32Array()))

    (per hidden (count ev["hidden"]), per YinYang.classes (count ev["out"])),
    (per hidden (r["hidden"].Spikes.Sum().ToScalar()), per YinYang.classes (r["out"].Spikes.Sum().ToScalar()))

let private median (xs: seq<float>) =
    let s = Array.sort (Array.ofSeq xs)
    s[s.Length / 2]

let private load () =
    try
        let f = (File.ReadAllText "/proc/loadavg").Split ' '
        $"load average %s{f[0]}, %s{f[1]}, %s{f[2]}"
    with _ ->
        "load average unavailable"

/// One training step: gradient, Adam update, new weights (discarded, so every step does the same work).
let private trainStep (loss: GraphParams -> Tensor) (w: GraphParams) =
    let tx = Optim.adam 1e-3
    let l, g = Ad.valueAndGrad loss w
    let u, _ = Optim.update tx g (Optim.init tx w) w
    let w' = Optim.applyUpdates w u
    GC.KeepAlive(l, w')

/// The loss and the gradient's global norm at the initial weights.
let private lossAndNorm (loss: GraphParams -> Tensor) (w: GraphParams) =
    let l, g = Ad.valueAndGrad loss w

    let norm =
        g
        |> Tree.leaves
        |> Array.sumBy (fun (t: Tensor) -> t.Convert(DType.Float64).Square().Sum().ToScalar())
        |> sqrt

    l.Convert(DType.Float64).ToScalar(), norm

let private throughput (s: Setup) (rounds: int) =
    let dt = 1e-4
    let steps = int (Math.Round(tEnd / dt))
    let ev = eventLoss s
    let st = steppedLoss s dt

    let s32 =
        { s with
            P0 = convert DType.Float32 s.P0
        }

    let w32 = convert DType.Float32 s.Weights
    let st32 = steppedLossAs DType.Float32 s32 dt
    let activityEv, activitySt = activity s dt

    let forwardA = Timing.median 1 3 (fun () -> eventLoss s s.Weights |> ignore)

    let forwardB = Timing.median 1 3 (fun () -> steppedLoss s dt s.Weights |> ignore)
    let la, na = lossAndNorm ev s.Weights
    let lb, nb = lossAndNorm st s.Weights
    trainStep ev s.Weights
    trainStep st s.Weights
    trainStep st32 w32
    let a = ResizeArray<float>()
    let b = ResizeArray<float>()
    let c = ResizeArray<float>()

    for _ in 1..rounds do
        a.Add(Timing.median 0 3 (fun () -> trainStep ev s.Weights))
        b.Add(Timing.median 0 1 (fun () -> trainStep st s.Weights))
        c.Add(Timing.median 0 1 (fun () -> trainStep st32 w32))

    let ta, tb, tc = median a, median b, median c
    let rb = median (Seq.map2 (fun x y -> y / x) a b)
    let rc = median (Seq.map2 (fun x y -> y / x) a c)
    let batch = float s.Batch

    printfn
        "eventtrain Yin-Yang 5-200-3 training step (batch %d, %d threads, %d interleaved rounds, %s):"
        s.Batch
        Kernels.Parallelism.MaxThreads
        rounds
        (load ())

    printfn
        "  (a) EventProp, Events.run, TTFS cross-entropy, Float64: %.4f s = %.0f samples/s (forward alone %.4f s; loss %.3f, |grad| %.3g; %.2f hidden and %.2f output spikes/neuron)"
        ta
        (batch / ta)
        forwardA
        la
        na
        (fst activityEv)
        (snd activityEv)

    printfn
        "  (b) BPTT, Graph.run, SuperSpike(100) surrogate, %d steps of %g ms, max-membrane cross-entropy, Float64: %.4f s = %.0f samples/s (forward alone %.4f s; loss %.3f, |grad| %.3g; %.2f hidden and %.2f output spikes/neuron); (b)/(a) time %.2fx (above 1: EventProp faster; median of per-round ratios; ratio of medians %.2fx)"
        steps
        (dt * 1e3)
        tb
        (batch / tb)
        forwardB
        lb
        nb
        (fst activitySt)
        (snd activitySt)
        rb
        (tb / ta)

    printfn
        "  (c) as (b) in Float32 (the samples' dtype): %.4f s = %.0f samples/s; (c)/(a) time %.2fx (median of per-round ratios; ratio of medians %.2fx)"
        tc
        (batch / tc)
        rc
        (tc / ta)

/// Managed bytes allocated by one gradient call (all threads), and the managed bytes still live
/// after the forward pass while the pullback is held (what the reverse pass keeps: the recorded
/// trace and its residuals), both after a warm-up call.
let private managed (loss: GraphParams -> Tensor) (w: GraphParams) =
    Ad.grad loss w |> ignore
    GC.Collect()
    GC.WaitForPendingFinalizers()
    let before = GC.GetTotalAllocatedBytes true
    let g = Ad.grad loss w
    let allocated = GC.GetTotalAllocatedBytes true - before
    GC.KeepAlive g
    let live0 = GC.GetTotalMemory true
    let y, pullback = Ad.vjp loss w
    let live1 = GC.GetTotalMemory true
    pullback (Tensor.OnesLike y) |> ignore
    GC.KeepAlive y
    allocated, live1 - live0

let private status (key: string) =
    File.ReadAllLines "/proc/self/status"
    |> Array.pick (fun l ->
        if l.StartsWith(key + ":") then
            Some(int64 (l.Substring(key.Length + 1).Trim().Split(' ')[0]) * 1024L)
        else
            None)

/// In a fresh process (the parent's heap would hide it): warm up on one sample, reset the peak
/// resident set (/proc/self/clear_refs 5, Linux), one gradient call at the full batch; prints the
/// peak resident set over the call minus the resident set before it.
let private peakChild (kind: string) (dt: float) (batch: int) =
    let run (s: Setup) =
        let loss = if kind = "event" then eventLoss s else steppedLoss s dt
        Ad.grad loss s.Weights |> ignore

    run (setup 1)
    let s = setup batch
    GC.Collect()
    GC.WaitForPendingFinalizers()
    GC.Collect()
    File.WriteAllText("/proc/self/clear_refs", "5")
    let rss = status "VmRSS"
    run s
    printfn "peak %d" (status "VmHWM" - rss)
    0

let private peak (kind: string) (dt: float) (batch: int) : int64 option =
    try
        let info = ProcessStartInfo(Environment.ProcessPath)

        for a in
            [
                Reflection.Assembly.GetEntryAssembly().Location
                "eventtrain"
                "--peak-child"
                kind
                string dt
                string batch
            ] do
            info.ArgumentList.Add a

        info.RedirectStandardOutput <- true
        info.UseShellExecute <- false
        use p = Process.Start info
        let out = p.StandardOutput.ReadToEnd()
        p.WaitForExit()

        out.Split('\n')
        |> Array.tryPick (fun l ->
            if l.StartsWith "peak " then
                Some(int64 (l.Substring 5))
            else
                None)
    with _ ->
        None

let private memory (s: Setup) =
    let mb (b: int64) = float b / 1048576.0

    let mbOpt =
        function
        | Some b -> sprintf "%.1f" (mb b)
        | None -> "n/a"

    let evAlloc, evLive = managed (eventLoss s) s.Weights

    let gradTime (loss: GraphParams -> Tensor) =
        Timing.median 1 5 (fun () -> Ad.grad loss s.Weights |> ignore)

    let evTime = gradTime (eventLoss s)
    let evPeak = peak "event" 1e-4 s.Batch

    printfn
        "eventtrain memory of one gradient call (batch %d, Float64, %d threads, %s): allocated = managed bytes allocated over Ad.grad (GC.GetTotalAllocatedBytes, temporaries included: an upper bound of what is kept); live = managed bytes still live after the forward pass of Ad.vjp while its pullback is held (what the reverse pass keeps); peak = peak resident set over one Ad.grad in a fresh process minus the resident set before it (GC timing included); s = median seconds of 5 Ad.grad calls (not interleaved). MB = 2^20 bytes."
        s.Batch
        Kernels.Parallelism.MaxThreads
        (load ())

    printfn
        "%8s %6s | %7s %14s %14s %11s | %7s %14s %14s %11s | %9s %9s"
        "dt (ms)"
        "steps"
        "BPTT s"
        "BPTT alloc MB"
        "BPTT live MB"
        "BPTT peak"
        "EvP s"
        "EvProp alloc"
        "EvProp live"
        "EvP peak"
        "alloc b/a"
        "live b/a"

    for dt in [ 1e-3; 0.5e-3; 0.2e-3; 0.1e-3; 0.05e-3 ] do
        let alloc, live = managed (steppedLoss s dt) s.Weights
        let t = gradTime (steppedLoss s dt)
        let pk = peak "bptt" dt s.Batch

        printfn
            "%8g %6d | %7.3f %14.1f %14.1f %11s | %7.3f %14.1f %14.2f %11s | %8.1fx %8.0fx"
            (dt * 1e3)
            (int (Math.Round(tEnd / dt)))
            t
            (mb alloc)
            (mb live)
            (mbOpt pk)
            evTime
            (mb evAlloc)
            (mb evLive)
            (mbOpt evPeak)
            (float alloc / float evAlloc)
            (float live / float evLive)

let run (argv: string[]) : int =
    if argv.Length > 0 && argv[0] = "--peak-child" then
        peakChild argv[1] (float argv[2]) (int argv[3])
    else
        let batch = if argv.Length > 0 then int argv[0] else 32
        let rounds = if argv.Length > 1 then int argv[1] else 15
        let s = setup batch
        throughput s rounds
        memory s
        0
