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
        let c = Tensor.FromArray(Array.init b.Times.Count (fun _ -> rng.NextDouble() + 0.5), b.Times.Shape)
        total <- total + (t * c).Sum() * 100.0

    for KeyValue(_, v) in out.MaxVoltage do
        let d = Tensor.FromArray(Array.init v.Count (fun _ -> rng.NextDouble() - 0.3), v.Shape)
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
        let scale = x |> Array.fold (fun m v -> if Double.IsFinite v then max m (abs v) else m) 1e-3

        let g =
            Array.init x.Length (fun k ->
              if not (Double.IsFinite x[k]) then 0.0 else
                // input times and delays: 0.2 µs; the others 1e-5 relative
                let h =
                    if node = inputKey || name = "delay" then 2e-7
                    else 1e-5 * max scale (abs x[k])
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
let private agree (what: string) (rtol: float) (floor: float) (expected: Map<string * string, float[]>) (actual: Map<string * string, float[]>) =
    for KeyValue(key, e) in expected do
        let a = actual[key]
        let floor = floor * (e |> Array.fold (fun m v -> max m (abs v)) 0.0)

        for k in 0 .. e.Length - 1 do
            Assert.True(abs (a[k] - e[k]) <= rtol * (abs e[k] + floor), $"%s{what}: %A{key}[%d{k}] = %.15g{a[k]}, expected %.15g{e[k]}")

let private pointOf (p: GraphParams) (events: EventBuffer) : Point = p.Add(inputKey, Map [ "times", events.Times ])

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
            let out = Events.run g (pt |> Map.remove inputKey) config (Map [ "x", ev.WithTimes(pt[inputKey]["times"]) ])
            out["h"].Times.Narrow(1, 0, 1).Sum()

        let pt = pointOf p ev
        let ts' = (f pt).ToScalar()
        let grads = Ad.grad f pt
        // V(t) = vl (1 − e^{−t/τm}) + w K(t − t0); V̇ = (I − ϑ + vl... ) from the state at t*.
        let s = ts' - t0
        let k = ts / (tm - ts) * (exp (-s / tm) - exp (-s / ts))
        let kdot = ts / (tm - ts) * (-exp (-s / tm) / tm + exp (-s / ts) / ts)
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
        array2D [ [ 0.0; 0.8; -0.5; 0.3 ]; [ 0.4; 0.0; 0.6; -0.7 ]; [ -0.3; 0.5; 0.0; 0.9 ]; [ 0.6; -0.4; 0.2; 0.0 ] ]

    let wout = array2D [ [ 1.0; -0.5 ]; [ 0.7; 0.9 ]; [ -0.6; 1.2 ]; [ 0.8; 0.3 ] ]
    let delayed (p: Projection) axes d = if delays then p |> Projection.delaySeconds (Init.constant d) axes else p

    let g =
        Graph.empty
        |> Graph.input "x" 3
        |> Graph.population "h" 4 hidden
        |> Graph.population "o" 2 (li 8e-3 5e-3 0.05)
        |> Graph.connect "x" "h" (delayed (dense win) PerInput 0.7e-3)
        |> Graph.connect "h" "h" (delayed (dense wrec) PerSynapse 1.3e-3)
        |> Graph.connect "h" "o" (delayed (dense wout) PerProjection 0.4e-3)

    let ev =
        buffer 3 4 [ [ 0.5e-3, 0; 1.7e-3, 1; 2.2e-3, 2; 6.1e-3, 0 ]; [ 0.9e-3, 2; 3.3e-3, 1; 4.0e-3, 0 ] ]

    g, Graph.initAs Float64 (Random.key 0L) g, ev

let private checkAgainstFd (refractory: int) (delays: bool) =
    let g, p, ev = golden refractory delays
    let pt = pointOf p ev

    let fd =
        finiteDiff (lossOf g (cfg 0.03 16 EventProp) ev "x" 7) pt

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
