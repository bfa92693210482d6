/// The population-by-population forward path of feed-forward graphs (EventLayered) against the
/// general event loop (EventSimulator) on random networks: the same spikes (neurons, counts,
/// overflow) and times and readout maxima to rounding; recurrent graphs and per-neuron time
/// constants take the general loop and so agree exactly.
module SnnFunc.Tests.EventLayeredTests

open System
open Xunit
open SnnFunc
open SnnFunc.Tests.EventSimTests.EventNets

/// A random feed-forward network with shared time constants: one or two hidden LIF layers, a skip
/// projection, an LI readout or a LIF output, per-neuron thresholds, leaks and resets, refractory
/// periods, delays per projection or per input, inputs with ties (also at t = 0). With `ratio`
/// r > 0, tauMem = r · tauSyn (the integer ratios the layered path solves in x = e^{−s/τm}).
let private randomNetWith (ratio: int) (rng: Random) =
    let u lo hi = lo + (hi - lo) * rng.NextDouble()
    let nIn = rng.Next(1, 6)
    let refractory = if rng.NextDouble() < 0.3 then rng.Next(1, 30) else 0

    let vec (n: int) lo hi =
        Init.ofTensor (Tensor.FromArray(Array.init n (fun _ -> u lo hi), n))

    let lifPop (n: int) =
        let tauMem, tauSyn =
            if ratio > 0 then
                let tm = u 3e-3 20e-3
                tm, tm / float ratio
            else
                u 3e-3 20e-3, u 2e-3 12e-3

        Neuron.lif
            { Snn.Lif.defaults with
                TauMem = tauMem
                TauSyn = tauSyn
                VTh = 1.0
                Dt = 1e-4
                RefractorySteps = refractory
            }
        |> Neuron.withInit "vLeak" (vec n -0.2 0.4)
        |> Neuron.withInit "vReset" (vec n -0.5 0.5)
        |> Neuron.withInit "vTh" (vec n 0.7 1.3)

    let weights (a: int) (b: int) (mean: float) =
        let w = Array2D.init a b (fun _ _ -> mean + 1.5 * (u -1.0 1.0))

        match rng.Next 4 with
        | 0 -> dense w |> Projection.delaySeconds (Init.uniform 0.0 2e-3) PerProjection
        | 1 -> dense w |> Projection.delaySeconds (Init.uniform 0.0 2e-3) PerInput
        | _ -> dense w

    let nH = rng.Next(1, 40)

    let mutable g =
        Graph.empty
        |> Graph.input "x" nIn
        |> Graph.population "h" nH (lifPop nH)
        |> Graph.connect "x" "h" (weights nIn nH 2.0)

    let mutable last = "h", nH

    if rng.NextDouble() < 0.5 then
        let n2 = rng.Next(1, 12)

        g <-
            g
            |> Graph.population "h2" n2 (lifPop n2)
            |> Graph.connect "h" "h2" (weights nH n2 1.0)

        if rng.NextDouble() < 0.5 then
            g <- g |> Graph.connect "x" "h2" (weights nIn n2 0.5)

        last <- "h2", n2

    // Sometimes wider than one lane group of the LI readout (liRun's 32).
    let nOut =
        if rng.NextDouble() < 0.15 then
            rng.Next(30, 75)
        else
            rng.Next(1, 6)

    g <-
        if rng.NextDouble() < 0.6 then
            g |> Graph.population "o" nOut (li (u 3e-3 15e-3) (u 2e-3 10e-3) (u -0.1 0.2))
        else
            g |> Graph.population "o" nOut (lifPop nOut)

    g <- g |> Graph.connect (fst last) "o" (weights (snd last) nOut 0.5)

    let sample () =
        [
            for m in 0 .. nIn - 1 do
                for _ in 1 .. rng.Next(0, 4) ->
                    (match rng.Next 5 with
                     | 0 -> 0.0
                     | 1 -> 2e-3
                     | _ -> u 0.0 10e-3),
                    m
        ]

    let ev = buffer nIn 16 [ for _ in 1..3 -> sample () ]
    g, Graph.initAs Float64 (Random.key (int64 (rng.Next()))) g, ev

let private randomNet = randomNetWith 0

/// The largest difference of spike times seen by `compare` (they are compared to 1e-10 relative).
let mutable private largestTimeDifference = 0.0

let private close (what: string) (expected: float[]) (actual: float[]) (tol: float) =
    Assert.Equal(expected.Length, actual.Length)

    for k in 0 .. expected.Length - 1 do
        if Double.IsFinite expected[k] && what.EndsWith "spike times" then
            largestTimeDifference <- max largestTimeDifference (abs (expected[k] - actual[k]))

        let e, a = expected[k], actual[k]

        if not (e = a || abs (e - a) <= tol * max 1.0 (abs e)) then
            failwith $"%s{what}, entry %d{k}: general loop %.17g{e}, layered %.17g{a}"

/// Both paths on one network: equal spike neurons and counts, times and maxima to `tol`.
let private compare (what: string) (g: Graph) (p: GraphParams) (config: EventConfig) (inputs: Map<string, EventBuffer>) =
    let fast = Events.run g p config inputs
    let general = Events.runWith false g p config inputs
    let mutable spikes = 0

    for KeyValue(name, e: EventBuffer) in general.Spikes do
        let f = fast.Spikes[name]
        Assert.Equal<int[]>(e.Count.ToInt32Array(), f.Count.ToInt32Array())
        Assert.Equal<int[]>(e.Overflow.ToInt32Array(), f.Overflow.ToInt32Array())
        Assert.Equal<int[]>(e.Neurons.ToInt32Array(), f.Neurons.ToInt32Array())
        close $"%s{what}: '%s{name}' spike times" (times e) (times f) 1e-10
        spikes <- spikes + Array.sum (e.Count.ToInt32Array())

    for KeyValue(name, m: Tensor) in general.MaxVoltage do
        close $"%s{what}: '%s{name}' maximum" (m.ToDoubleArray()) (fast.MaxVoltage[name].ToDoubleArray()) 1e-10
        close $"%s{what}: '%s{name}' time of the maximum" (general.MaxTime[name].ToDoubleArray()) (fast.MaxTime[name].ToDoubleArray()) 1e-6

    spikes

[<Fact>]
let ``the layered path equals the general loop on 400 random feed-forward networks`` () =
    let rng = Random(20261202)
    let mutable spikes = 0

    for draw in 1..400 do
        let g, p, ev = randomNet rng
        let capacity = if draw % 5 = 0 then 2 else 64

        spikes <-
            spikes
            + compare $"draw %d{draw}" g p (cfg 0.02 capacity EventProp) (Map [ "x", ev ])

    // The draws must exercise spiking, not only silence.
    Assert.True(spikes > 2000, $"only %d{spikes} spikes in all draws")

[<Fact>]
let ``inputs past TEnd: the layered path (which cuts them off the sorted input) equals the general loop`` () =
    // The random inputs lie in [0, 10 ms]; with TEnd = 6 ms some of every sample's are past it.
    let rng = Random(20261206)

    for draw in 1..100 do
        let g, p, ev = randomNet rng

        let late =
            ev.Times.ToDoubleArray() |> Array.exists (fun t -> t > 6e-3 && t < infinity)

        Assert.True(late || draw > 1, "the first draw must have inputs past TEnd")

        compare $"draw %d{draw}" g p (cfg 0.006 64 EventProp) (Map [ "x", ev ])
        |> ignore

[<Fact>]
let ``integer ratios tauMem = r tauSyn (the exponential-free crossing solves): the layered path equals the general loop`` () =
    let rng = Random(20261203)
    let mutable spikes = 0
    largestTimeDifference <- 0.0

    for draw in 1..400 do
        let ratio = [| 2; 3; 4; 4; 5; 8 |][draw % 6]
        let g, p, ev = randomNetWith ratio rng
        let capacity = if draw % 5 = 0 then 2 else 64

        spikes <-
            spikes
            + compare $"draw %d{draw} (ratio %d{ratio})" g p (cfg 0.02 capacity EventProp) (Map [ "x", ev ])

    Assert.True(spikes > 2000, $"only %d{spikes} spikes in all draws")
    // Both solve the same crossings to full precision: far closer than the 1e-10 compared.
    Assert.True(largestTimeDifference < 1e-15, $"spike times differ by up to %g{largestTimeDifference} s")

[<Fact>]
let ``the MNIST16-sized network: the same spikes and maxima on latency-coded patterns`` () =
    let rng = Random(7)

    let g =
        Graph.empty
        |> Graph.input "x" 256
        |> Graph.population "h" 128 (lif 20e-3 5e-3 1.0 0.0 0.0)
        |> Graph.population "o" 10 (li 20e-3 5e-3 0.0)
        |> Graph.connect "x" "h" (Projection.dense (Init.gaussian 0.15 0.1))
        |> Graph.connect "h" "o" (Projection.dense (Init.gaussian 0.2 0.37))

    let p = Graph.initAs Float64 (Random.key 3L) g

    let pixels =
        Tensor.FromArray(Array.init (16 * 256) (fun _ -> if rng.NextDouble() < 0.3 then 0.0 else rng.NextDouble()), 16, 256)

    let ev = EventBuffer.latency 0.0 20e-3 pixels
    let spikes = compare "MNIST16-sized" g p (cfg 0.04 512 EventProp) (Map [ "x", ev ])
    Assert.True(spikes > 100, $"only %d{spikes} hidden spikes")

[<Fact>]
let ``many spikes in one interval, with exact ties, come out ordered by (time, neuron)`` () =
    // Two inputs early, then nothing: the 60 hidden neurons fire in the long last interval, the
    // neurons 2k and 2k + 1 (equal weights) at the same instant; listed in descending strength,
    // so that the interval's spikes come in the reverse of time order.
    let n = 60

    let w =
        Array2D.init 2 n (fun r c -> (if r = 0 then 3.0 else 1.0) * (3.0 - 0.03 * float (c / 2)))

    let g =
        Graph.empty
        |> Graph.input "x" 2
        |> Graph.population "h" n (lif 10e-3 5e-3 1.0 0.0 0.0)
        |> Graph.connect "x" "h" (dense w)

    let p = Graph.initAs Float64 (Random.key 0L) g
    let ev = buffer 2 4 [ [ 0.0, 0; 1e-4, 1 ] ]

    let spikes =
        compare "one long interval" g p (cfg 0.05 256 EventProp) (Map [ "x", ev ])

    Assert.True(spikes >= n, $"only %d{spikes} spikes")
    let h = (Events.run g p (cfg 0.05 256 EventProp) (Map [ "x", ev ])).Spikes["h"]
    let ts, ns = times h, h.Neurons.ToInt32Array()

    for k in 1 .. spikes - 1 do
        Assert.True(ts[k - 1] < ts[k] || (ts[k - 1] = ts[k] && ns[k - 1] < ns[k]), $"spikes %d{k - 1} and %d{k} out of order")

    Assert.True(Seq.exists (fun k -> ts[k - 1] = ts[k]) [ 1 .. spikes - 1 ], "no tie was exercised")

[<Fact>]
let ``recurrent graphs and per-neuron time constants take the general loop`` () =
    let recurrent =
        Graph.empty
        |> Graph.input "x" 2
        |> Graph.population "h" 3 (lif 10e-3 5e-3 1.0 0.0 0.0)
        |> Graph.connect "x" "h" (dense (array2D [ [ 3.0; 2.0; 1.0 ]; [ 1.0; 2.5; 3.0 ] ]))
        |> Graph.connect "h" "h" (dense (array2D [ [ 0.0; 0.5; 0.5 ]; [ 0.5; 0.0; 0.5 ]; [ 0.5; 0.5; 0.0 ] ]))

    let perNeuron =
        Graph.empty
        |> Graph.input "x" 2
        |> Graph.population
            "h"
            3
            (lif 10e-3 5e-3 1.0 0.0 0.0
             |> Neuron.withInit "tauMem" (Init.ofTensor (Tensor.FromArray([| 5e-3; 10e-3; 20e-3 |], 3))))
        |> Graph.connect "x" "h" (dense (array2D [ [ 3.0; 2.0; 1.0 ]; [ 1.0; 2.5; 3.0 ] ]))

    let ev = buffer 2 4 [ [ 1e-3, 0; 2e-3, 1; 4e-3, 0 ] ]

    for g in [ recurrent; perNeuron ] do
        let p = Graph.initAs Float64 (Random.key 0L) g
        let fast = Events.run g p (cfg 0.03 16 EventProp) (Map [ "x", ev ])
        let general = Events.runWith false g p (cfg 0.03 16 EventProp) (Map [ "x", ev ])
        let h, hg = fast.Spikes["h"], general.Spikes["h"]
        Assert.True(Array.sum (counts h) > 0)
        Assert.Equal<float[]>(times hg, times h)
