/// Events.replay, the forward pass of event-based hardware in the loop: given spike times replace
/// the solved ones. With the model's own spikes given it is Events.run (values and gradients); with
/// other spikes given, the downstream run equals a run fed those spikes by a source, and the
/// derivative of a given spike is the closed form −(∂V/∂w) / V̇ at the given time.
module SnnFunc.Tests.EventReplayTests

open System
open Xunit
open SnnFunc
open SnnFunc.Tests.AdTestUtil

let private tm, ts = 10e-3, 5e-3

let private lif =
    { Snn.Lif.defaults with
        TauMem = tm
        TauSyn = ts
        VTh = 1.0
        VReset = 0.0
        VLeak = 0.0
        Dt = 1e-5
    }

/// x (2 inputs) -> h (3 LIF) -> o (2 LIF).
let private twoLayer =
    Graph.empty
    |> Graph.input "x" 2
    |> Graph.population "h" 3 (Neuron.lif lif)
    |> Graph.population "o" 2 (Neuron.lif lif)
    |> Graph.connect "x" "h" (Projection.dense Init.zeros)
    |> Graph.connect "h" "o" (Projection.dense Init.zeros)

let private config =
    { Events.defaults with
        TEnd = 0.04
        Capacity = 256
    }

let private buffer (times: float[]) (neurons: int[]) (counts: int[]) (capacity: int) (n: int) =
    let batch = counts.Length

    EventBuffer(
        Tensor.FromArray(times, batch, capacity),
        Tensor.FromArray(neurons, batch, capacity),
        Tensor.FromArray(counts, batch),
        Tensor.FromArray(Array.zeroCreate<int> batch, batch),
        [| n |]
    )

/// Two samples of input spikes.
let private input =
    buffer [| 1e-3; 2e-3; infinity; 0.5e-3; 0.5e-3; 4e-3 |] [| 0; 1; -1; 1; 0; 1 |] [| 2; 3 |] 3 2

let private paramsOf (wxh: Tensor) (who: Tensor) =
    (Graph.initAs Float64 (Random.key 0L) twoLayer).Add("x->h", Map [ "weight", wxh ]).Add("h->o", Map [ "weight", who ])

let private wxh0 = Tensor.FromArray([| 6.0; 3.0; 9.0; 5.0; 8.0; 2.0 |], 2, 3)

let private who0 = Tensor.FromArray([| 4.0; 2.5; 3.0; 6.0; 5.0; 1.0 |], 3, 2)

/// Times equal to rounding (the layered forward path and the general loop split flows differently),
/// empty slots (+inf) in the same places.
let private assertTimes (what: string) (expected: Tensor) (actual: Tensor) =
    Assert.True(expected.Shape = actual.Shape, $"%s{what}: shape")
    let e, a = expected.ToDoubleArray(), actual.ToDoubleArray()

    for i in 0 .. e.Length - 1 do
        let same =
            if Double.IsInfinity e[i] then
                a[i] = e[i]
            else
                abs (a[i] - e[i]) <= 1e-12 * abs e[i] + 1e-16

        Assert.True(same, $"%s{what}: slot %d{i} is %.17g{a[i]}, expected %.17g{e[i]}")

let private loss (run: EventRun) =
    let held (b: EventBuffer) =
        Tensor.Where(b.Neurons.Ge(Tensor.FromArray([| 0 |]).Reshape()), b.Times, Tensor.ZerosLike b.Times)

    (held run["h"]).Sum() * 100.0 + (held run["o"] * 2.0).Sum() * 100.0

[<Fact>]
let ``replaying the model's own spikes is Events.run, values and gradients`` () =
    let own = Events.run twoLayer (paramsOf wxh0 who0) config (Map [ "x", input ])
    Assert.True(own["h"].Count.ToInt32Array() |> Array.sum >= 3, "the hidden layer spikes")
    Assert.True(own["o"].Count.ToInt32Array() |> Array.sum >= 2, "the output layer spikes")
    Assert.True(own["h"].Overflow.ToInt32Array() |> Array.forall ((=) 0), "the hidden spikes fit")

    for gradient in [ EventProp; Solver ] do
        let c = { config with Gradient = gradient }

        let run (given: Map<string, EventBuffer>) (w: Tensor * Tensor) =
            Events.replay twoLayer (paramsOf (fst w) (snd w)) c (Map [ "x", input ]) given

        for given in [ Map.empty; Map [ "h", own["h"] ]; Map [ "h", own["h"]; "o", own["o"] ] ] do
            let what = $"%A{gradient}, given %A{given.Keys |> List.ofSeq}"
            let r = run given (wxh0, who0)
            assertTimes $"%s{what}: hidden times" own["h"].Times r["h"].Times
            assertTimes $"%s{what}: output times" own["o"].Times r["o"].Times
            assertEqualValues $"%s{what}: output neurons" own["o"].Neurons r["o"].Neurons
            let gw = Ad.grad (fun w -> loss (run Map.empty w)) (wxh0, who0)
            let gr = Ad.grad (fun w -> loss (run given w)) (wxh0, who0)
            assertClose $"%s{what}: d/dw x->h" 1e-9 1e-12 (fst gw) (fst gr)
            assertClose $"%s{what}: d/dw h->o" 1e-9 1e-12 (snd gw) (snd gr)

[<Fact>]
let ``downstream of given spikes the run is that of a source emitting them`` () =
    // Spikes no model of these weights would emit: the output must follow them anyway.
    let given =
        buffer [| 2e-3; 2.5e-3; 7e-3; 1e-3; infinity; infinity |] [| 2; 0; 2; 1; -1; -1 |] [| 3; 1 |] 3 3

    let fed =
        Graph.empty
        |> Graph.input "h" 3
        |> Graph.population "o" 2 (Neuron.lif lif)
        |> Graph.connect "h" "o" (Projection.dense Init.zeros)

    let pFed who =
        (Graph.initAs Float64 (Random.key 0L) fed).Add("h->o", Map [ "weight", who ])

    let replayed who =
        (Events.replay twoLayer (paramsOf wxh0 who) config (Map [ "x", input ]) (Map [ "h", given ]))["o"]

    let direct who =
        (Events.run fed (pFed who) config (Map [ "h", given ]))["o"]

    let r, d = replayed who0, direct who0
    Assert.True(d.Count.ToInt32Array() |> Array.sum >= 2, "the output spikes")
    assertTimes "output times" d.Times r.Times
    assertEqualValues "output neurons" d.Neurons r.Neurons

    let t (b: EventBuffer) =
        Tensor.Where(b.Neurons.Ge(Tensor.FromArray([| 0 |]).Reshape()), b.Times, Tensor.ZerosLike b.Times).Sum()

    assertClose "d/dw h->o" 1e-10 1e-12 (Ad.grad (fun w -> t (direct w)) who0) (Ad.grad (fun w -> t (replayed w)) who0)

    // The replayed hidden layer reports the given spikes as its own.
    let h =
        (Events.replay twoLayer (paramsOf wxh0 who0) config (Map [ "x", input ]) (Map [ "h", given ]))["h"]

    assertTimes "hidden times" given.Times (h.Times.Narrow(1, 0, 3))

[<Fact>]
let ``the derivative of a given spike is the crossing rule at the given time`` () =
    // One input spike at t_in with weight w; the neuron is said to spike at t_k, where V < v_th.
    // V(s) = w K(s), K(s) = τs/(τm−τs) (e^{−s/τm} − e^{−s/τs}); I(s) = w e^{−s/τs};
    // dt_k/dw = −K(s)/V̇ with V̇ = (I(s) − v_th + v_leak)/τm at the threshold.
    let one =
        Graph.empty
        |> Graph.input "x" 1
        |> Graph.population "h" 1 (Neuron.lif lif)
        |> Graph.connect "x" "h" (Projection.dense Init.zeros)

    let tIn, tK, w = 1e-3, 4e-3, 3.0
    let s = tK - tIn
    let k = ts / (tm - ts) * (exp (-s / tm) - exp (-s / ts))
    Assert.True(w * k < 1.0, "the given spike is below threshold in the model")
    let vdot = (w * exp (-s / ts) - 1.0) / tm
    let expected = -k / vdot

    for gradient in [ EventProp; Solver ] do
        let time (w: Tensor) =
            let p =
                (Graph.initAs Float64 (Random.key 0L) one).Add("x->h", Map [ "weight", w.Reshape(1, 1) ])

            let x = Map [ "x", buffer [| tIn |] [| 0 |] [| 1 |] 1 1 ]
            let given = Map [ "h", buffer [| tK |] [| 0 |] [| 1 |] 1 1 ]
            let run = Events.replay one p { config with Gradient = gradient } x given
            run["h"].Times.Narrow(1, 0, 1).Sum()

        let g = (Ad.grad time (s64 w)).ToScalar()
        Assert.True(abs (g - expected) < 1e-12 * abs expected, $"%A{gradient}: %g{g} against %g{expected}")
        Assert.Equal(tK, (time (Tensor.Scalar(w, Float64))).ToScalar())

[<Fact>]
let ``given spikes that do not fit are named errors`` () =
    let p = paramsOf wxh0 who0
    let x = Map [ "x", input ]

    let fails (given: Map<string, EventBuffer>) (words: string list) =
        let e =
            Assert.ThrowsAny<ArgumentException>(fun () -> Events.replay twoLayer p config x given |> ignore)

        for w in words do
            Assert.True(e.Message.Contains(w: string), $"'%s{w}' in: %s{e.Message}")

    let ok = buffer [| 1e-3; 2e-3 |] [| 0; 1 |] [| 1; 1 |] 1 3
    fails (Map [ "y", ok ]) [ "'y'"; "not a population" ]
    let full = Events.run twoLayer p { config with Capacity = 1 } x
    fails (Map [ "h", full["h"] ]) [ "'h'"; "overflowed" ]
    fails (Map [ "h", buffer [| 1e-3 |] [| 0 |] [| 1 |] 1 3 ]) [ "'h'"; "[2; capacity]" ]
    fails (Map [ "h", buffer [| 1e-3; 2e-3 |] [| 0; 1 |] [| 1; 1 |] 1 4 ]) [ "'h'"; "4 neurons" ]
    fails (Map [ "h", buffer [| 1e-3; 2e-3 |] [| 0; 3 |] [| 1; 1 |] 1 3 ]) [ "'h'"; "sample 1"; "neuron 3" ]

    fails (Map [ "h", buffer [| 2e-3; 1e-3; 1e-3; 2e-3 |] [| 0; 1; 0; 1 |] [| 2; 2 |] 2 3 ]) [ "'h'"; "sample 0"; "ascending" ]
