/// The event-driven simulator: spike times against closed forms written here independently
/// (Lambert W, the τm = 2τs quadratic, a fine bisection for other ratios), flows, ties, delays,
/// refractory periods, overflow and the errors for what it does not support.
module SnnFunc.Tests.EventSimTests

open System
open Xunit
open SnnFunc

/// Helpers shared with EventGradTests.
module EventNets =
    /// One buffer [B; cap] of (time, neuron) lists per sample, Float64.
    let buffer (n: int) (cap: int) (samples: (float * int) list list) =
        let b = samples.Length
        let times = Array.create (b * cap) Double.PositiveInfinity
        let neurons = Array.create (b * cap) -1
        let counts = Array.zeroCreate b

        samples
        |> List.iteri (fun s evs ->
            let evs = evs |> List.sortBy fst

            evs
            |> List.iteri (fun k (t, m) ->
                times[s * cap + k] <- t
                neurons[s * cap + k] <- m)

            counts[s] <- evs.Length)

        EventBuffer(
            Tensor.FromArray(times, b, cap),
            Tensor.FromArray(neurons, b, cap),
            Tensor.FromArray(counts, b),
            Tensor.FromArray(Array.zeroCreate<int> b, b),
            [| n |]
        )

    let lif (tm: float) (ts: float) (vth: float) (vl: float) (vr: float) =
        Neuron.lif
            { Snn.Lif.defaults with
                TauMem = tm
                TauSyn = ts
                VTh = vth
                VLeak = vl
                VReset = vr
                Dt = 1e-5
            }

    let li (tm: float) (ts: float) (vl: float) =
        Neuron.li
            { Snn.Li.defaults with
                TauMem = tm
                TauSyn = ts
                VLeak = vl
                Dt = 1e-5
            }

    let dense (w: float[,]) =
        Projection.dense (Init.ofTensor (Tensor.FromArray(Seq.cast<float> w |> Array.ofSeq, Array2D.length1 w, Array2D.length2 w)))

    let cfg tEnd cap gradient =
        { Events.defaults with
            TEnd = tEnd
            Capacity = cap
            Gradient = gradient
        }

    let times (b: EventBuffer) = b.Times.ToDoubleArray()
    let counts (b: EventBuffer) = b.Count.ToInt32Array()

open EventNets

/// x -> one LIF neuron with weight w, one input spike at t0.
let private single (tm: float) (ts: float) (vth: float) (vl: float) (w: float) (t0: float) =
    let g =
        Graph.empty
        |> Graph.input "x" 1
        |> Graph.population "h" 1 (lif tm ts vth vl 0.0)
        |> Graph.connect "x" "h" (dense (array2D [ [ w ] ]))

    let p = Graph.initAs Float64 (Random.key 0L) g

    let out =
        Events.run g p (cfg 0.1 4 EventProp) (Map [ "x", buffer 1 2 [ [ t0, 0 ] ] ])

    times out["h"]

/// Lambert W0 on [−1/e, 0) by Halley's method, from a series start (independent of the library).
let private lambertW0 (z: float) =
    let mutable w =
        if z < -0.3 then
            -1.0 + sqrt (2.0 * (1.0 + Math.E * z))
        else
            z

    for _ in 1..60 do
        let ew = exp w
        let f = w * ew - z
        let step = f / (ew * (w + 1.0) - (w + 2.0) * f / (2.0 * w + 2.0))

        if Double.IsFinite step then
            w <- w - step

    w

[<Fact>]
let ``tau_m = tau_s: the spike time is Lambert W's`` () =
    for tau, w, t0 in [ 5e-3, 3.0, 1e-3; 10e-3, 2.9, 0.0; 2e-3, 10.0, 4e-3 ] do
        let actual = (single tau tau 1.0 0.0 w t0)[0]
        // (s/τ) e^{−s/τ} = ϑ/w  ⇒  s = −τ W0(−ϑ/w)
        let expected = t0 - tau * lambertW0 (-1.0 / w)
        Assert.True(abs (actual - expected) <= 1e-10 * expected, $"τ={tau}, w={w}: %.17g{actual} vs %.17g{expected}")

[<Fact>]
let ``tau_m = 2 tau_s: the spike time is the quadratic's`` () =
    for tm, w, t0 in [ 10e-3, 5.0, 1e-3; 20e-3, 4.5, 0.0; 4e-3, 40.0, 2e-3 ] do
        let actual = (single tm (tm / 2.0) 1.0 0.0 w t0)[0]
        // V = w (x − x²), x = e^{−s/τm}; the largest root of x² − x + ϑ/w.
        let x = (1.0 + sqrt (1.0 - 4.0 / w)) / 2.0
        let expected = t0 - tm * log x
        Assert.True(abs (actual - expected) <= 1e-10 * expected, $"τm={tm}, w={w}: %.17g{actual} vs %.17g{expected}")

/// V(t) of a neuron from rest V = 0 with leak vl and one input of weight w at t0.
let private vOf (tm: float) (ts: float) (vl: float) (w: float) (t0: float) (t: float) =
    let psp s =
        if s <= 0.0 then
            0.0
        else
            // (s/τm) e^{−s/τs} (e^y − 1)/y with y = s (1/τs − 1/τm), by its series when small
            let y = s * (1.0 / ts - 1.0 / tm)

            let exprel =
                if abs y < 1e-3 then
                    1.0 + y / 2.0 + y * y / 6.0 + y * y * y / 24.0
                else
                    (exp y - 1.0) / y

            w * s / tm * exp (-s / ts) * exprel

    vl * (1.0 - exp (-t / tm)) + psp (t - t0)

[<Fact>]
let ``any ratio, leak included: the spike time is a fine bisection's`` () =
    for tm, ts, vl, w, t0 in
        [
            10e-3, 3e-3, 0.0, 8.0, 1e-3
            3e-3, 8e-3, 0.2, 1.5, 2e-3 // τs > τm
            7e-3, 7.000001e-3, -0.1, 3.0, 0.5e-3 // nearly equal
            20e-3, 5e-3, 0.5, 6.0, 5e-3
        ] do
        let actual = (single tm ts 1.0 vl w t0)[0]
        let f t = vOf tm ts vl w t0 t - 1.0
        let mutable lo = t0

        while f (lo + 1e-6) < 0.0 && lo < 0.2 do
            lo <- lo + 1e-6

        let mutable hi = lo + 1e-6

        for _ in 1..200 do
            let m = 0.5 * (lo + hi)
            if f m < 0.0 then lo <- m else hi <- m

        Assert.True(abs (actual - hi) <= 1e-10 * hi, $"τm={tm}, τs={ts}: %.17g{actual} vs %.17g{hi}")

[<Fact>]
let ``a subthreshold input gives no spike, and the LI maximum is the closed form's`` () =
    Assert.True(Double.IsPositiveInfinity((single 10e-3 5e-3 1.0 0.0 3.9 1e-3)[0])) // max w/4 < 1 at τm = 2τs
    // LI readout: τm = 2τs, V = w(x − x²) peaks at x = 1/2 with w/4, at s = τm ln 2.
    let g =
        Graph.empty
        |> Graph.input "x" 1
        |> Graph.population "o" 2 (li 10e-3 5e-3 0.0)
        |> Graph.connect "x" "o" (dense (array2D [ [ 0.8; -0.5 ] ]))

    let p = Graph.initAs Float64 (Random.key 0L) g

    let out =
        Events.run g p (cfg 0.1 4 EventProp) (Map [ "x", buffer 1 2 [ [ 2e-3, 0 ] ] ])

    let vmax = out.MaxVoltage["o"].ToDoubleArray()
    let tmax = out.MaxTime["o"].ToDoubleArray()
    Assert.True(abs (vmax[0] - 0.2) <= 1e-14, $"%.17g{vmax[0]}")
    Assert.True(abs (tmax[0] - (2e-3 + 10e-3 * log 2.0)) <= 1e-14)
    Assert.Equal(0.0, vmax[1]) // an inhibited neuron's maximum is V(0) = 0

[<Fact>]
let ``several spikes, reset and refractory period against a hand-integrated trajectory`` () =
    // A strong input makes the neuron fire repeatedly; between spikes the closed form of V from
    // v_reset with the decaying current gives each next spike (bisection here).
    let tm, ts, vth, vr, w = 10e-3, 5e-3, 1.0, -0.3, 12.0
    let tref = 1e-3

    let g =
        Graph.empty
        |> Graph.input "x" 1
        |> Graph.population
            "h"
            1
            (Neuron.lif
                { Snn.Lif.defaults with
                    TauMem = tm
                    TauSyn = ts
                    VTh = vth
                    VReset = vr
                    Dt = 1e-4
                    RefractorySteps = 10
                })
        |> Graph.connect "x" "h" (dense (array2D [ [ w ] ]))

    let p = Graph.initAs Float64 (Random.key 0L) g

    let out =
        Events.run g p (cfg 0.05 16 EventProp) (Map [ "x", buffer 1 2 [ [ 0.0, 0 ] ] ])

    let ts' = times out["h"]
    let n = (counts out["h"])[0]
    Assert.True(n >= 2, $"spikes: %d{n}")
    // Independent integration: state (V, I) piecewise.
    let mutable t = 0.0
    let mutable v = 0.0
    let mutable cur = w

    let flow (v0: float) (i0: float) s =
        v0 * exp (-s / tm) + i0 * ts / (tm - ts) * (exp (-s / tm) - exp (-s / ts))

    for k in 0 .. n - 1 do
        let f s = flow v cur s - vth
        let mutable lo = 0.0

        while f (lo + 1e-6) < 0.0 && lo < 0.2 do
            lo <- lo + 1e-6

        let mutable hi = lo + 1e-6

        for _ in 1..200 do
            let m = 0.5 * (lo + hi)
            if f m < 0.0 then lo <- m else hi <- m

        let tk = t + hi
        Assert.True(abs (ts'[k] - tk) <= 1e-10 * tk, $"spike %d{k}: %.17g{ts'[k]} vs %.17g{tk}")
        // reset, refractory hold, then continue from the end of the hold
        cur <- cur * exp (-(hi + tref) / ts)
        v <- vr
        t <- tk + tref

[<Fact>]
let ``delays in seconds shift arrivals; ties are applied together`` () =
    let g d =
        Graph.empty
        |> Graph.input "x" 2
        |> Graph.population "h" 1 (lif 10e-3 5e-3 1.0 0.0 0.0)
        |> Graph.connect
            "x"
            "h"
            (dense (array2D [ [ 5.0 ]; [ 5.0 ] ])
             |> Projection.delaySeconds (Init.constant d) PerProjection)

    let run d evs =
        let gg = g d
        let p = Graph.initAs Float64 (Random.key 0L) gg
        let out = Events.run gg p (cfg 0.1 4 EventProp) (Map [ "x", buffer 2 2 [ evs ] ])
        (times out["h"])[0]

    let t0 = run 0.0 [ 1e-3, 0 ]
    let t1 = run 2e-3 [ 1e-3, 0 ]
    Assert.True(abs (t1 - t0 - 2e-3) <= 1e-15, $"%g{t1 - t0}")
    // Two inputs at the same instant equal one of twice the weight (τm = 2τs: quadratic).
    let tie = run 0.0 [ 1e-3, 0; 1e-3, 1 ]
    let x = (1.0 + sqrt (1.0 - 4.0 / 10.0)) / 2.0
    Assert.True(abs (tie - (1e-3 - 10e-3 * log x)) <= 1e-14)

[<Fact>]
let ``overflow is counted, Fail raises naming the population and sample`` () =
    let g =
        Graph.empty
        |> Graph.input "x" 1
        |> Graph.population "h" 1 (lif 10e-3 5e-3 1.0 0.0 0.0)
        |> Graph.connect "x" "h" (dense (array2D [ [ 40.0 ] ]))

    let p = Graph.initAs Float64 (Random.key 0L) g
    let inp = Map [ "x", buffer 1 2 [ [ 0.0, 0 ] ] ]
    let big = Events.run g p (cfg 0.05 64 EventProp) inp
    let n = (counts big["h"])[0]
    Assert.True(n > 3)
    let small = Events.run g p (cfg 0.05 2 EventProp) inp
    Assert.Equal(2, (counts small["h"])[0])
    Assert.Equal(n - 2, (small["h"].Overflow.ToInt32Array())[0])
    Assert.Equal<float[]>((times big["h"])[0..1], times small["h"])

    let e =
        Assert.Throws<InvalidOperationException>(fun () ->
            Events.run
                g
                p
                { cfg 0.05 2 EventProp with
                    OnOverflow = Fail
                }
                inp
            |> ignore)

    Assert.Contains("'h'", e.Message)
    Assert.Contains("sample 0", e.Message)

[<Fact>]
let ``bad inputs and unsupported graphs are clear errors`` () =
    let g =
        Graph.empty
        |> Graph.input "x" 2
        |> Graph.population "h" 1 (lif 10e-3 5e-3 1.0 0.0 0.0)
        |> Graph.connect "x" "h" (dense (array2D [ [ 3.0 ]; [ 3.0 ] ]))

    let p = Graph.initAs Float64 (Random.key 0L) g
    let ok = buffer 2 2 [ [ 1e-3, 0 ] ]

    let err (f: unit -> unit) (text: string) =
        let e = Assert.ThrowsAny<exn>(f)
        Assert.Contains(text, e.Message)

    err (fun () -> Events.run g p (cfg 0.1 4 EventProp) (Map [ "y", ok ]) |> ignore) "'y'"
    err (fun () -> Events.run g p (cfg 0.1 4 EventProp) Map.empty |> ignore) "no input is given for the source 'x'"

    err
        (fun () ->
            Events.run g p (cfg 0.1 4 EventProp) (Map [ "x", buffer 3 2 [ [ 1e-3, 0 ] ] ])
            |> ignore)
        "shape"

    err (fun () -> Events.run g p (cfg 0.1 0 EventProp) (Map [ "x", ok ]) |> ignore) "Capacity"

    err
        (fun () ->
            Events.run g p (cfg 0.1 4 EventProp) (Map [ "x", buffer 2 2 [ [ 1e-3, 5 ] ] ])
            |> ignore)
        "neuron 5"

    let out = Events.run g p (cfg 0.1 4 EventProp) (Map [ "x", ok ])
    err (fun () -> out["nope"] |> ignore) "'nope'"

    let neg =
        Graph.empty
        |> Graph.input "x" 2
        |> Graph.population "h" 1 (lif 10e-3 5e-3 1.0 0.0 0.0)
        |> Graph.connect
            "x"
            "h"
            (dense (array2D [ [ 3.0 ]; [ 3.0 ] ])
             |> Projection.delaySeconds (Init.constant -1e-3) PerInput)

    err
        (fun () ->
            Events.run neg (Graph.initAs Float64 (Random.key 0L) neg) (cfg 0.1 4 EventProp) (Map [ "x", ok ])
            |> ignore)
        "x->h"

    let adex =
        Graph.empty
        |> Graph.input "x" 2
        |> Graph.population "a" 1 (Neuron.alif Snn.Alif.defaults)
        |> Graph.connect "x" "a" (Projection.dense Init.normal)

    err
        (fun () ->
            Events.run adex (Graph.initAs Float64 (Random.key 0L) adex) (cfg 0.1 4 EventProp) (Map [ "x", ok ])
            |> ignore)
        "'a'"

    let stepped =
        Graph.empty
        |> Graph.input "x" 2
        |> Graph.population "h" 1 (lif 10e-3 5e-3 1.0 0.0 0.0)
        |> Graph.connect "x" "h" (Projection.dense Init.normal |> Projection.delayed 2)

    err
        (fun () ->
            Events.run stepped (Graph.initAs Float64 (Random.key 0L) stepped) (cfg 0.1 4 EventProp) (Map [ "x", ok ])
            |> ignore)
        "seconds"

    let sec =
        Graph.empty
        |> Graph.input "x" 2
        |> Graph.population "h" 1 (lif 10e-3 5e-3 1.0 0.0 0.0)
        |> Graph.connect
            "x"
            "h"
            (Projection.dense Init.normal
             |> Projection.delaySeconds (Init.constant 1e-3) PerProjection)

    err
        (fun () ->
            Graph.run sec (Graph.initAs Float64 (Random.key 0L) sec) (RunConfig.steps 3 1e-5) (Map [ "x", Tensor.zeros [| 3; 1; 2 |] ])
            |> ignore)
        "Events.run"
