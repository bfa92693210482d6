// Yin-Yang with exact spike-time gradients (EventProp), interactively: Wunderlich and Pehle's 5-200-3
// LIF network (τm 20 ms, τs 5 ms), simulated event by event, time-to-first-spike cross-entropy, Adam.
// After `dotnet build -c Release`:   dotnet fsi samples/scripts/yinyang_events.fsx   (a few minutes)
#r "../../src/SnnFunc/bin/Release/net10.0/SnnFunc.dll"

open SnnFunc
open SnnFunc.Data

let epochs, batchSize, lr, tEnd = 10, 32, 5e-3, 60e-3
let data = YinYang.splits 0L

let encode (x: Tensor) =
    EventBuffer.latency 0.0 30e-3 (x.Convert DType.Float64) // u spikes at u · 30 ms, bias at 0

let lif =
    { Snn.Lif.defaults with
        TauMem = 20e-3
        TauSyn = 5e-3
    }

let g =
    Graph.empty
    |> Graph.input "x" 5
    |> Graph.population "hidden" 200 (Neuron.lif lif)
    |> Graph.population "out" 3 (Neuron.lif lif)
    |> Graph.connect "x" "hidden" (Projection.dense (Init.gaussian 1.5 0.78))
    |> Graph.connect "hidden" "out" (Projection.dense (Init.gaussian 0.93 0.1))

let p0 = Graph.initAs DType.Float64 (Random.key 0L) g

let config =
    { Events.defaults with
        TEnd = tEnd
        Capacity = 512
    }

let neurons = p0 |> Map.filter (fun k _ -> not (k.Contains "->")) // fixed; only the weights learn

let full (w: GraphParams) =
    Map.fold (fun (acc: GraphParams) k v -> acc.Add(k, v)) neurons w

let firstTimes w x =
    let out = Events.run g (full w) config (Map [ "x", encode x ])
    Events.firstSpikeTimes out["out"]

let loss (labels: int[]) (x: Tensor) w =
    let out = Events.run g (full w) config (Map [ "x", encode x ])
    let t = Events.firstSpikeTimes out["out"]
    // A sample whose label neuron stays silent adds no loss or gradient (Wunderlich and Pehle's policy).
    EventLoss.ttfsCrossEntropySkipSilent 0.5e-3 6.4e-3 3e-3 tEnd t labels, (Events.spikeCounts out["hidden"], Events.spikeCounts out["out"])

// Weight bumping (reference §3.6): a neuron silent in at least `fraction` of a batch gets 1e-4 more input
// weight, so that it fires again (a silent neuron has no gradient, and the training would stall).
let bump (synapses: string) (fraction: float) (counts: Tensor) (w: GraphParams) =
    let c, b, n = counts.ToDoubleArray(), counts.Shape[0], counts.Shape[1]

    let quiet j =
        Seq.init b (fun s -> c[s * n + j] = 0.0) |> Seq.filter id |> Seq.length

    let raise =
        Array.init n (fun j -> if float (quiet j) >= fraction * float b then 1e-4 else 0.0)

    let m = w[synapses]
    w.Add(synapses, m.Add("weight", m["weight"] + Tensor.FromArray(raise, n)))

let batches = Batching.batchCount batchSize true data.Train.Count

let tx =
    Optim.chain
        [
            Optim.clipByGlobalNorm 1.0
            Optim.adamWith (Optim.exponentialDecay lr batches 0.95 true) 0.9 0.999 1e-8
        ]

let mutable w = p0 |> Map.filter (fun k _ -> k.Contains "->")
let mutable state = Optim.init tx w

for epoch in 0 .. epochs - 1 do
    for x, labels in Batching.batchesDropLast (Random.key (int64 epoch)) batchSize data.Train do
        let (_, (hidden, output)), grads = Ad.valueAndGradAux (loss labels x) w
        let updates, s = Optim.update tx grads state w

        w <-
            Optim.applyUpdates w updates
            |> bump "x->hidden" 1.0 hidden // only hidden neurons silent for the whole batch
            |> bump "hidden->out" 0.15 output

        state <- s

    printfn
        "epoch %d: validation accuracy %.3f"
        (epoch + 1)
        (EventLoss.ttfsAccuracy (firstTimes w data.Validation.X) data.Validation.Labels)

printfn "test_accuracy=%.4f" (EventLoss.ttfsAccuracy (firstTimes w data.Test.X) data.Test.Labels)
