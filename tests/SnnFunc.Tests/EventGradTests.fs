/// Gradients of the event-driven simulation: closed forms for one spike (reference §3.4), golden
/// multi-spike, recurrent, two-layer, delayed and refractory cases against central finite
/// differences, EventProp against the solver adjoint on random networks (and both against forward
/// mode), and the transforms (grad, jvp, vjp, vmap, vmap∘grad, jacfwd, jacrev) through Events.run.
module SnnFunc.Tests.EventGradTests

open System
open Xunit
open SnnFunc
open SnnFunc.Tests.EventSimTests.EventNets

/// The parameters and the input times as one pytree (the input under the node "__input").
type private Point = Map<string, Map<string, Tensor>>

let private inputKey = "__input"

/// A differentiable scalar of a run: Σ c·t over the held spikes plus Σ d·Vmax, with fixed weights
/// from a seeded generator.
let private lossOf (g: Graph) (config: EventConfig) (events: EventBuffer) (source: string) (seed: int) (pt: Point) =
    let p = pt |> Map.remove inputKey
    let buf = events.WithTimes(pt[inputKey]["times"])
    let out = Events.run g p config (Map [ source, buf ])
    let rng = Random(seed)
    let mutable total = Tensor.Scalar(0.0, Float64)

    for KeyValue(_, b) in out.Spikes do
        let held = b.Neurons.Ge(Tensor.FromArray([| 0 |]).Reshape())
        let t = Tensor.Where(held, b.Times, Tensor.ZerosLike b.Times)

        let c =
            Tensor.FromArray(Array.init b.Times.Count (fun _ -> rng.NextDouble() + 0.5), b.Times.Shape)

        total <- total + (t * c).Sum() * 100.0

    for KeyValue(_, v) in out.MaxVoltage do
        let d =
            Tensor.FromArray(Array.init v.Count (fun _ -> rng.NextDouble() - 0.3), v.Shape)

        total <- total + (v * d).Sum()

    total

let private leaves (pt: Point) =
    [
        for KeyValue(node, m) in pt do
            for KeyValue(name, t) in m do
                yield node, name, t
    ]

let private withLeaf (pt: Point) (node: string) (name: string) (t: Tensor) = pt.Add(node, pt[node].Add(name, t))

/// Five-point central differences of a scalar function of the point, leaf by leaf, element by element.
let private finiteDiff (f: Point -> Tensor) (pt: Point) =
    leaves pt
    |> List.map (fun (node, name, t) ->
        let x = t.ToDoubleArray()

        let scale =
            x |> Array.fold (fun m v -> if Double.IsFinite v then max m (abs v) else m) 1e-3

        let g =
            Array.init x.Length (fun k ->
                if not (Double.IsFinite x[k]) then
                    0.0
                else
                    // input times and delays: 0.2 µs; the others 1e-5 relative
                    let h =
                        if node = inputKey || name = "delay" then
                            2e-7
                        else
                            1e-5 * max scale (abs x[k])

                    let at (d: float) =
                        let y = Array.copy x
                        y[k] <- y[k] + d
                        (f (withLeaf pt node name (Tensor.FromArray(y, t.Shape)))).ToScalar()

                    // the five-point stencil: truncation O(h⁴)
                    (8.0 * (at h - at -h) - (at (2.0 * h) - at (-2.0 * h))) / (12.0 * h))

        (node, name), g)
    |> Map.ofList

let private asMap (pt: Point) =
    leaves pt |> List.map (fun (n, k, t) -> (n, k), t.ToDoubleArray()) |> Map.ofList

/// Asserts |a − e| <= rtol·(|e| + floor·max|e of the leaf|) per element, naming the leaf.
let private agree
    (what: string)
    (rtol: float)
    (floor: float)
    (expected: Map<string * string, float[]>)
    (actual: Map<string * string, float[]>)
    =
    for KeyValue(key, e) in expected do
        let a = actual[key]
        let floor = floor * (e |> Array.fold (fun m v -> max m (abs v)) 0.0)

        for k in 0 .. e.Length - 1 do
            Assert.True(abs (a[k] - e[k]) <= rtol * (abs e[k] + floor), $"%s{what}: %A{key}[%d{k}] = %.15g{a[k]}, expected %.15g{e[k]}")

let private pointOf (p: GraphParams) (events: EventBuffer) : Point =
    p.Add(inputKey, Map [ "times", events.Times ])

// ---------------------------------------------------------------------------------------------
// One spike: closed forms (reference §3.4)

[<Fact>]
let ``one spike: the weight and input-time gradients are the implicit-function closed forms`` () =
    let tm, ts, vl, w, t0 = 10e-3, 4e-3, 0.2, 6.0, 1e-3

    let g =
        Graph.empty
        |> Graph.input "x" 1
        |> Graph.population "h" 1 (lif tm ts 1.0 vl 0.0)
        |> Graph.connect "x" "h" (dense (array2D [ [ w ] ]))

    let p = Graph.initAs Float64 (Random.key 0L) g
    let ev = buffer 1 1 [ [ t0, 0 ] ]

    for gradient in [ EventProp; Solver ] do
        let config = cfg 0.05 4 gradient

        let f (pt: Point) =
            let out =
                Events.run g (pt |> Map.remove inputKey) config (Map [ "x", ev.WithTimes(pt[inputKey]["times"]) ])

            out["h"].Times.Narrow(1, 0, 1).Sum()

        let pt = pointOf p ev
        let ts' = (f pt).ToScalar()
        let grads = Ad.grad f pt
        // V(t) = vl (1 − e^{−t/τm}) + w K(t − t0); V̇ = (I − ϑ + vl... ) from the state at t*.
        let s = ts' - t0
        let k = ts / (tm - ts) * (exp (-s / tm) - exp (-s / ts))
        let kdot = ts / (tm - ts) * (-exp(-s / tm) / tm + exp (-s / ts) / ts)
        let vdot = vl / tm * exp (-ts' / tm) + w * kdot
        let dw = -k / vdot
        let dt0 = -(-w * kdot) / vdot
        let dvth = 1.0 / vdot
        let leaf (node: string) (name: string) = (grads[node][name]).ToDoubleArray()
        let gw = (leaf "x->h" "weight")[0]
        let gt = (leaf inputKey "times")[0]
        let gth = (leaf "h" "vTh")[0]
        Assert.True(abs (gw - dw) <= 1e-10 * abs dw, $"%A{gradient} dt/dw %.17g{gw} vs %.17g{dw}")
        Assert.True(abs (gt - dt0) <= 1e-10 * abs dt0, $"%A{gradient} dt/dt0 %.17g{gt} vs %.17g{dt0}")
        Assert.True(abs (gth - dvth) <= 1e-10 * abs dvth, $"%A{gradient} dt/dvTh %.17g{gth} vs %.17g{dvth}")

// ---------------------------------------------------------------------------------------------
// Golden networks against finite differences

/// x (3) -> h (4 LIF, recurrent, per-neuron τ and leak, refractory) -> o (2 LI), delays.
let private golden (refractory: int) (delays: bool) =
    let spec =
        { Snn.Lif.defaults with
            TauMem = 10e-3
            TauSyn = 4e-3
            VTh = 1.0
            VLeak = 0.1
            VReset = -0.2
            Dt = 1e-4
            RefractorySteps = refractory
        }

    let hidden =
        Neuron.lif spec
        |> Neuron.withInit "tauMem" (Init.ofTensor (Tensor.FromArray([| 8e-3; 12e-3; 4e-3; 10e-3 |], 4)))
        |> Neuron.withInit "tauSyn" (Init.ofTensor (Tensor.FromArray([| 4e-3; 3e-3; 4e-3; 10e-3 |], 4)))
        |> Neuron.withInit "vLeak" (Init.ofTensor (Tensor.FromArray([| 0.1; -0.1; 0.3; 0.0 |], 4)))

    let win =
        array2D [ [ 3.0; 2.5; 4.0; 1.0 ]; [ 1.5; 3.0; -1.0; 5.0 ]; [ 2.0; 0.5; 3.0; 2.5 ] ]

    let wrec =
        array2D
            [
                [ 0.0; 0.8; -0.5; 0.3 ]
                [ 0.4; 0.0; 0.6; -0.7 ]
                [ -0.3; 0.5; 0.0; 0.9 ]
                [ 0.6; -0.4; 0.2; 0.0 ]
            ]

    let wout = array2D [ [ 1.0; -0.5 ]; [ 0.7; 0.9 ]; [ -0.6; 1.2 ]; [ 0.8; 0.3 ] ]

    let delayed (p: Projection) axes d =
        if delays then
            p |> Projection.delaySeconds (Init.constant d) axes
        else
            p

    let g =
        Graph.empty
        |> Graph.input "x" 3
        |> Graph.population "h" 4 hidden
        |> Graph.population "o" 2 (li 8e-3 5e-3 0.05)
        |> Graph.connect "x" "h" (delayed (dense win) PerInput 0.7e-3)
        |> Graph.connect "h" "h" (delayed (dense wrec) PerSynapse 1.3e-3)
        |> Graph.connect "h" "o" (delayed (dense wout) PerProjection 0.4e-3)

    let ev =
        buffer
            3
            4
            [
                [ 0.5e-3, 0; 1.7e-3, 1; 2.2e-3, 2; 6.1e-3, 0 ]
                [ 0.9e-3, 2; 3.3e-3, 1; 4.0e-3, 0 ]
            ]

    g, Graph.initAs Float64 (Random.key 0L) g, ev

let private checkAgainstFd (refractory: int) (delays: bool) =
    let g, p, ev = golden refractory delays
    let pt = pointOf p ev

    let fd = finiteDiff (lossOf g (cfg 0.03 16 EventProp) ev "x" 7) pt

    for gradient in [ EventProp; Solver ] do
        let grads = Ad.grad (lossOf g (cfg 0.03 16 gradient) ev "x" 7) pt
        agree $"%A{gradient} vs finite differences" 1e-7 1e-2 fd (asMap grads)

    // the network does spike several times per neuron (a test that can fail)
    let out = Events.run g p (cfg 0.03 16 EventProp) (Map [ "x", ev ])
    Assert.True((out["h"].Count.ToInt32Array() |> Array.min) >= 4)

[<Fact>]
let ``recurrent two-layer network with per-neuron parameters: gradients equal finite differences`` () = checkAgainstFd 0 false

[<Fact>]
let ``with delays (per input, per synapse, per projection): gradients equal finite differences`` () = checkAgainstFd 0 true

[<Fact>]
let ``with a refractory period: gradients equal finite differences`` () = checkAgainstFd 5 true

// ---------------------------------------------------------------------------------------------
// EventProp against the solver adjoint (and forward mode) on random networks

let private randomNet (rng: Random) =
    let u lo hi = lo + (hi - lo) * rng.NextDouble()
    let nIn, nH = rng.Next(1, 4), rng.Next(1, 5)

    let twoLayers, recurrent, readout, delays =
        rng.NextDouble() < 0.4, rng.NextDouble() < 0.5, rng.NextDouble() < 0.7, rng.NextDouble() < 0.5

    let refractory = if rng.NextDouble() < 0.3 then rng.Next(1, 20) else 0

    let hidden n =
        let vec lo hi =
            Init.ofTensor (Tensor.FromArray(Array.init n (fun _ -> u lo hi), n))

        Neuron.lif
            { Snn.Lif.defaults with
                VTh = 1.0
                VReset = u -0.5 0.5
                Dt = 1e-4
                RefractorySteps = refractory
            }
        |> Neuron.withInit "tauMem" (vec 3e-3 20e-3)
        |> Neuron.withInit "tauSyn" (vec 2e-3 12e-3)
        |> Neuron.withInit "vLeak" (vec -0.2 0.4)
        |> Neuron.withInit "vReset" (vec -0.5 0.5)

    let weights (a: int) (b: int) (mean: float) =
        let w = Array2D.init a b (fun _ _ -> mean + 1.5 * (u -1.0 1.0))
        let proj = dense w

        if delays && rng.NextDouble() < 0.6 then
            proj |> Projection.delaySeconds (Init.uniform 0.0 2e-3) PerSynapse
        else
            proj

    let mutable g =
        Graph.empty
        |> Graph.input "x" nIn
        |> Graph.population "h" nH (hidden nH)
        |> Graph.connect "x" "h" (weights nIn nH 3.0)

    if recurrent then
        g <- g |> Graph.connect "h" "h" (weights nH nH 0.0)

    let last =
        if twoLayers then
            let n2 = rng.Next(1, 4)

            g <-
                g
                |> Graph.population "h2" n2 (hidden n2)
                |> Graph.connect "h" "h2" (weights nH n2 2.5)

            "h2", n2
        else
            "h", nH

    if readout then
        let n = rng.Next(1, 3)

        g <-
            g
            |> Graph.population "o" n (li (u 3e-3 15e-3) (u 2e-3 10e-3) (u -0.1 0.2))
            |> Graph.connect (fst last) "o" (weights (snd last) n 0.5)

    let ev =
        buffer
            nIn
            8
            [
                for _ in 1..2 ->
                    [
                        for m in 0 .. nIn - 1 do
                            for _ in 1 .. rng.Next(1, 3) -> u 0.0 8e-3, m
                    ]
            ]

    g, Graph.initAs Float64 (Random.key (int64 (rng.Next()))) g, ev

[<Fact>]
let ``EventProp equals the solver adjoint and forward mode on 300 random networks`` () =
    let rng = Random(20260301)
    let mutable spiking = 0

    for draw in 1..300 do
        let g, p, ev = randomNet rng
        let pt = pointOf p ev

        let loss gradient =
            lossOf g (cfg 0.025 12 gradient) ev "x" draw

        let ep = asMap (Ad.grad (loss EventProp) pt)
        let solver = asMap (Ad.grad (loss Solver) pt)
        agree $"draw %d{draw}: EventProp vs Solver" 1e-9 1e-6 solver ep
        // forward mode: the tangent along a random direction is the gradient's dot product
        let v =
            pt
            |> Map.map (fun _ m ->
                m
                |> Map.map (fun _ t -> Tensor.FromArray(Array.init t.Count (fun _ -> rng.NextDouble() - 0.5), t.Shape)))

        let _, dl = Ad.jvp (loss Solver) pt v

        let dot =
            leaves v
            |> List.sumBy (fun (n, k, t) ->
                Array.fold2 (fun s a b -> if Double.IsFinite b then s + a * b else s) 0.0 (t.ToDoubleArray()) solver[(n, k)])

        let scale =
            1e-9
            * (abs dot
               + (leaves v |> List.sumBy (fun (n, k, _) -> solver[(n, k)] |> Array.sumBy abs)))

        Assert.True(abs (dl.ToScalar() - dot) <= scale, $"draw %d{draw}: jvp %.15g{dl.ToScalar()} vs <grad, v> %.15g{dot}")
        let out = Events.run g p (cfg 0.025 12 EventProp) (Map [ "x", ev ])

        if (out["h"].Count.ToInt32Array() |> Array.sum) > 0 then
            spiking <- spiking + 1

    Assert.True(spiking >= 200, $"only %d{spiking} of 300 networks spiked")

// ---------------------------------------------------------------------------------------------
// Transforms through Events.run, against a closed-form twin

/// Three LIF neurons (τm = 2τs) fed one input spike at 1 ms through weights w [3]: their spike
/// times, by the simulator and by the quadratic's closed form.
let private viaEvents (gradient: EventGradient) (w: Tensor) =
    let g =
        Graph.empty
        |> Graph.input "x" 1
        |> Graph.population "h" 3 (lif 10e-3 5e-3 1.0 0.0 0.0)
        |> Graph.connect "x" "h" (Projection.dense Init.zeros)

    let p =
        (Graph.initAs Float64 (Random.key 0L) g).Add("x->h", Map [ "weight", w.Reshape(1, 3) ])

    let out =
        Events.run g p (cfg 0.05 4 gradient) (Map [ "x", buffer 1 1 [ [ 1e-3, 0 ] ] ])

    (Events.firstSpikeTimes out["h"]).Reshape [| 3 |]

let private closedForm (w: Tensor) =
    let x = ((1.0 - 4.0 / w).Sqrt() + 1.0) * 0.5
    -(x.Log() * 10e-3) + 1e-3

[<Fact>]
let ``grad, jvp, vjp, vmap, vmap of grad, grad of vmap, jacfwd, jacrev through Events.run equal the closed form's`` () =
    let w = Tensor.FromArray([| 5.0; 7.0; 4.5 |], 3)
    let ws = Tensor.FromArray([| 5.0; 7.0; 4.5; 6.0; 4.2; 9.0 |], 2, 3)
    let v = Tensor.FromArray([| 0.3; -0.7; 1.1 |], 3)

    let loss (f: Tensor -> Tensor) (w: Tensor) : Tensor =
        (f w * Tensor.FromArray([| 1.0; 2.0; -1.5 |], 3)).Sum() * 100.0

    for gradient in [ EventProp; Solver ] do
        let f = viaEvents gradient

        let check what (e: Tensor) (a: Tensor) =
            AdTestUtil.assertClose $"%A{gradient} %s{what}" 1e-10 1e-14 e a

        check "value" (closedForm w) (f w)
        check "grad" (Ad.grad (loss closedForm) w) (Ad.grad (loss f) w)
        check "jvp" (snd (Ad.jvp closedForm w v)) (snd (Ad.jvp f w v))
        check "vjp" ((snd (Ad.vjp closedForm w)) v) ((snd (Ad.vjp f w)) v)
        check "vmap" (Ad.vmap closedForm ws) (Ad.vmap f ws)
        check "vmap of grad" (Ad.vmap (Ad.grad (loss closedForm)) ws) (Ad.vmap (Ad.grad (loss f)) ws)

        check
            "grad of vmap"
            (Ad.grad (fun ws -> (Ad.vmap (loss closedForm) ws).Sum()) ws)
            (Ad.grad (fun ws -> (Ad.vmap (loss f) ws).Sum()) ws)

        check "jacfwd" (Ad.jacfwd closedForm w) (Ad.jacfwd f w)
        check "jacrev" (Ad.jacrev closedForm w) (Ad.jacrev f w)
        check "vmap of jvp" (Ad.vmap (fun w -> snd (Ad.jvp closedForm w v)) ws) (Ad.vmap (fun w -> snd (Ad.jvp f w v)) ws)
        check "linearize" ((snd (Ad.linearize closedForm w)) v) ((snd (Ad.linearize f w)) v)
        let e = Assert.ThrowsAny<exn>(fun () -> Ad.hessian (loss f) w |> ignore)
        Assert.Contains("second-order", e.Message)

[<Fact>]
let ``silent neurons get zero gradients, never NaN, and bumpSilent wakes them`` () =
    let g =
        Graph.empty
        |> Graph.input "x" 1
        |> Graph.population "h" 2 (lif 10e-3 5e-3 1.0 0.0 0.0)
        |> Graph.connect "x" "h" (dense (array2D [ [ 6.0; 3.9 ] ]))

    let p = Graph.initAs Float64 (Random.key 0L) g
    let ev = buffer 1 1 [ [ 1e-3, 0 ] ]

    let f (p: GraphParams) : Tensor =
        let out = Events.run g p (cfg 0.05 4 EventProp) (Map [ "x", ev ])
        (Events.firstSpikeTimes out["h"]).Narrow(1, 0, 1).Sum()

    let grads = Ad.grad f p
    let gw = (grads["x->h"]["weight"]).ToDoubleArray()
    Assert.True(Double.IsFinite gw[0] && gw[0] < 0.0)
    Assert.Equal(0.0, gw[1])
    let out = Events.run g p (cfg 0.05 4 EventProp) (Map [ "x", ev ])
    let p' = Events.bumpSilent 0.5 "h" g p out
    Assert.Equal<float[]>([| 6.0; 4.4 |], (p'["x->h"]["weight"]).ToDoubleArray())
    let out' = Events.run g p' (cfg 0.05 4 EventProp) (Map [ "x", ev ])
    Assert.Equal(2, (out'["h"].Count.ToInt32Array())[0])

[<Fact>]
let ``Float32 runs compute in Float64 inside and return Float32 times and gradients`` () =
    let g, p, ev = golden 0 true
    let p32 = p |> Map.map (fun _ m -> m |> Map.map (fun _ t -> t.Convert Float32))
    let ev32 = ev.WithTimes(ev.Times.Convert Float32)
    let out64 = Events.run g p (cfg 0.03 16 EventProp) (Map [ "x", ev ])
    let out32 = Events.run g p32 (cfg 0.03 16 EventProp) (Map [ "x", ev32 ])
    Assert.Equal(Float32, out32["h"].Times.DType)
    let a, e = times out32["h"], times out64["h"]

    for k in 0 .. e.Length - 1 do
        if Double.IsFinite e[k] then
            Assert.True(abs (a[k] - e[k]) <= 1e-5 * e[k], $"slot %d{k}: %g{a[k]} vs %g{e[k]}")

    let f (p: GraphParams) : Tensor =
        let o = Events.run g p (cfg 0.03 16 EventProp) (Map [ "x", ev32 ])
        (Events.firstSpikeTimes o["h"]).Sum()

    let grads = Ad.grad f p32
    let w = grads["x->h"]["weight"]
    Assert.Equal(Float32, w.DType)
    Assert.True(w.ToDoubleArray() |> Array.forall Double.IsFinite)

[<Fact>]
let ``gradients over a batch are the same bit for bit whatever the thread count and scheduling`` () =
    let lif =
        { Snn.Lif.defaults with
            TauMem = 20e-3
            TauSyn = 5e-3
            Dt = 1e-4
        }

    let g =
        Graph.empty
        |> Graph.input "x" 5
        |> Graph.population "h" 40 (Neuron.lif lif)
        |> Graph.population "o" 3 (Neuron.lif lif)
        |> Graph.connect "x" "h" (Projection.dense (Init.gaussian 1.5 0.78))
        |> Graph.connect "h" "o" (Projection.dense (Init.gaussian 0.93 0.3))

    let p = Graph.initAs DType.Float64 (Random.key 2L) g

    let x =
        EventBuffer.latency 0.0 30e-3 (Random.uniformAs DType.Float64 (Random.key 3L) [| 301; 5 |])

    let gradient threads gradient =
        let before = Kernels.Parallelism.MaxThreads
        Kernels.Parallelism.MaxThreads <- threads

        try
            let config =
                { Events.defaults with
                    TEnd = 60e-3
                    Capacity = 256
                    Gradient = gradient
                }

            let loss (q: GraphParams) =
                let t = Events.firstSpikeTimes (Events.run g q config (Map [ "x", x ])).["o"]
                Tensor.Where(t.Lt 1.0, t, Tensor.ZerosLike t).Sum()

            let grads = Ad.grad loss p
            Array.append ((grads["x->h"]["weight"]).ToDoubleArray()) ((grads["h->o"]["weight"]).ToDoubleArray())
        finally
            Kernels.Parallelism.MaxThreads <- before

    for method in [ EventProp; Solver ] do
        let one = gradient 1 method
        Assert.Contains(one, fun v -> v <> 0.0)

        for _ in 1..3 do
            Assert.Equal<float[]>(one, gradient 2 method)
