/// Neuron parameters as tensors: learning per-neuron time constants and thresholds through the
/// fused kernels against the generic step scan, validation that names the neuron, the barrier that
/// keeps time constants above Dt, the refractory period against a hand-written loop, and runs that
/// continue from a final state.
module SnnFunc.Tests.NeuronParamsTests

open System
open Xunit
open SnnFunc
open SnnFunc.Tests.AdTestUtil

let private lifSpec =
    { Snn.Lif.defaults with
        Dt = 1e-3
        VTh = 0.35
    }

let private config = Snn.Lif.config lifSpec

/// A small regression task: 4 LIF neurons driven by fixed currents, loss on spikes and membrane.
let private currents = uniform (Random 5) -2.0 14.0 [| 20; 3; 4 |]
let private target = uniform (Random 6) 0.0 0.5 [| 20; 3; 4 |]

type LearnedLif =
    {
        TauMem: Tensor
        TauSyn: Tensor
        VTh: Tensor
    }

let private paramsOf (l: LearnedLif) : Snn.Lif.Params =
    {
        TauMem = l.TauMem
        TauSyn = l.TauSyn
        VLeak = Tensor.Scalar(0.0, Float64)
        VTh = l.VTh
        VReset = Tensor.Scalar(0.0, Float64)
    }

let private lossFused (l: LearnedLif) =
    let r = Fused.lifRun config (paramsOf l) (Snn.Lif.init [| 3; 4 |] Float64) currents
    ((r.Spikes * 0.3 + r.Membrane - target).Square()).Mean()

let private lossGeneric (l: LearnedLif) =
    let _, (z, v) =
        Ad.scan (Snn.Lif.stepWithMembrane config (paramsOf l)) (Snn.Lif.init [| 3; 4 |] Float64) currents

    ((z * 0.3 + v - target).Square()).Mean()

let private maxRelDiff (a: Tensor) (b: Tensor) =
    let x, y = a.ToDoubleArray(), b.ToDoubleArray()
    let scale = Array.fold (fun m v -> max m (abs v)) 1e-300 y
    Array.fold2 (fun m p q -> max m (abs (p - q) / scale)) 0.0 x y

[<Fact>]
let ``training per-neuron time constants and thresholds through the fused kernels matches the step scan to 1e-12`` () =
    let init =
        {
            TauMem = t64 [| 4 |] [ 8e-3; 10e-3; 12e-3; 15e-3 ]
            TauSyn = t64 [| 4 |] [ 3e-3; 4e-3; 5e-3; 6e-3 ]
            VTh = t64 [| 4 |] [ 0.3; 0.35; 0.4; 0.45 ]
        }

    // Time constants get their own (small) rate: adam on seconds with 1e-4 moves them by ~0.1 ms.
    let tx = Optim.adam 1e-4
    let mutable pf, pg = init, init
    let mutable sf, sg = Optim.init tx pf, Optim.init tx pg
    let mutable lastLoss = infinity

    for step in 1..8 do
        let lf, gf = Ad.valueAndGrad lossFused pf
        let lg, gg = Ad.valueAndGrad lossGeneric pg
        assertNear $"loss at step %d{step}" 1e-12 (lg.ToScalar()) (lf.ToScalar())

        for name, a, b in
            [
                "TauMem", gf.TauMem, gg.TauMem
                "TauSyn", gf.TauSyn, gg.TauSyn
                "VTh", gf.VTh, gg.VTh
            ] do
            Assert.True(maxAbs b > 0.0, $"the gradient of %s{name} must not vanish")
            let d = maxRelDiff a b
            Assert.True(d <= 1e-12, $"step %d{step}: the gradient of %s{name} differs by %g{d} (relative to its largest element)")

        let uf, sf' = Optim.update tx gf sf pf
        let ug, sg' = Optim.update tx gg sg pg
        pf <- Optim.applyUpdates pf uf
        pg <- Optim.applyUpdates pg ug
        sf <- sf'
        sg <- sg'
        lastLoss <- lf.ToScalar()

    // The time constants moved, and differently per neuron.
    let moved = (pf.TauMem - init.TauMem).Abs().ToDoubleArray()
    Assert.True(moved |> Array.forall (fun d -> d > 0.0), "every neuron's tauMem was trained")
    Assert.True(Double.IsFinite lastLoss)

[<Fact>]
let ``validation names the model, the parameter, the neuron and the value`` () =
    let bad (tauMem: float list) (vTh: float list) : Snn.Lif.Params =
        {
            TauMem = t64 [| tauMem.Length |] tauMem
            TauSyn = s64 5e-3
            VLeak = s64 0.0
            VTh = t64 [| vTh.Length |] vTh
            VReset = s64 0.0
        }

    let throws (fragments: string list) (p: Snn.Lif.Params) =
        let e =
            Assert.ThrowsAny<ArgumentException>(fun () -> Snn.Lif.validateParams config p |> ignore)

        for f in fragments do
            Assert.Contains(f, e.Message)

    throws [ "Lif"; "TauMem"; "neuron 2"; "0.0005"; "Dt" ] (bad [ 10e-3; 9e-3; 0.5e-3 ] [ 1.0 ])
    throws [ "Lif"; "TauMem"; "neuron 1"; "NaN" ] (bad [ 10e-3; nan ] [ 1.0 ])
    throws [ "Lif"; "VTh"; "neuron 1"; "must lie above the reset" ] (bad [ 10e-3 ] [ 1.0; -0.5; 1.0 ])
    throws [ "Lif"; "VTh"; "neuron 0"; "finite" ] (bad [ 10e-3 ] [ infinity ])
    // The fused kernel checks that what it is given is finite (learned values may leave the
    // physical ranges, the barrier keeps the dynamics stable: see the next test).
    let e =
        Assert.ThrowsAny<ArgumentException>(fun () ->
            Fused.lifRun
                config
                (bad [ 10e-3; nan ] [ 1.0 ])
                (Snn.Lif.init [| 2 |] Float64)
                (Tensor.zeros [| 3; 2 |] |> Tensor.convert Float64)
            |> ignore)

    Assert.Contains("Fused.lif", e.Message)
    Assert.Contains("TauMem of neuron 1", e.Message)

[<Fact>]
let ``the time-constant barrier is exact from 2 Dt, smooth and above Dt below`` () =
    let dt = 1e-3
    let tau = t64 [| 7 |] [ -5e-3; 0.0; 0.5e-3; 1e-3; 1.9e-3; 2e-3; 10e-3 ]
    let eff = Snn.effectiveTau dt tau
    let e = eff.ToDoubleArray()

    // Never below Dt (far below, the barrier rounds to Dt itself: a = dt/tau = 1, still a stable
    // Euler step), strictly above it near Dt.
    for k in 0..4 do
        Assert.True(e[k] >= dt, $"tau %g{(tau.ToDoubleArray())[k]} gives %g{e[k]}, below Dt")

    Assert.True(e[3] > dt && e[2] > dt)

    Assert.Equal(10e-3, e[6])
    assertNear "at 2 Dt" 1e-15 2e-3 e[5]
    // Smooth: the slope is 1 well above Dt and tends to 0 far below it.
    let slope = Ad.grad (fun (t: Tensor) -> (Snn.effectiveTau dt t).Sum()) tau |> values
    assertNear "slope at 10 ms" 1e-15 1.0 slope[6]
    assertNear "slope at 1.9 ms" 1e-12 1.0 slope[4]
    Assert.True(slope[0] < 1e-10 && slope[0] >= 0.0)
    // A gradient step that drove tauMem to 0 keeps the run finite.
    let p =
        { Snn.Lif.paramsAs Float64 lifSpec with
            TauMem = s64 0.0
        }

    let r = Fused.lifRun config p (Snn.Lif.init [| 3; 4 |] Float64) currents
    Assert.True(r.Membrane.ToDoubleArray() |> Array.forall Double.IsFinite)

[<Fact>]
let ``a refractory period holds the membrane and silences the neuron, as a hand-written loop does`` () =
    let spec =
        { lifSpec with
            RefractorySteps = 3
            VReset = -0.1
        }

    let c = Snn.Lif.config spec
    let p = Snn.Lif.paramsAs Float64 spec
    let drive = Array.init 40 (fun t -> if t % 9 = 4 then 0.0 else 9.0)
    let x = t64 [| 40; 1 |] (List.ofArray drive)
    // The reference, written from the definition.
    let a, b = spec.Dt / spec.TauMem, 1.0 - spec.Dt / spec.TauSyn
    let mutable v, i, silent = 0.0, 0.0, 0
    let expectedZ, expectedV = Array.zeroCreate 40, Array.zeroCreate 40

    for t in 0..39 do
        let v1 = if silent > 0 then v else v + a * (spec.VLeak - v + i)
        i <- b * i + drive[t]
        let spike = silent = 0 && v1 > spec.VTh
        expectedZ[t] <- (if spike then 1.0 else 0.0)
        expectedV[t] <- v1
        v <- (if spike then spec.VReset else v1)
        silent <- (if spike then spec.RefractorySteps else max 0 (silent - 1))

    let r = Fused.lifRun c p (Snn.Lif.init [| 1 |] Float64) x
    Assert.Equal<float[]>(expectedZ, values r.Spikes)
    assertClose "membrane" 1e-13 1e-15 (t64 [| 40; 1 |] (List.ofArray expectedV)) r.Membrane
    Assert.True(Array.sum expectedZ >= 3.0, "the drive makes the neuron spike several times")
    // The generic step gives the same numbers.
    let _, (z, v1) =
        Ad.scan (Snn.Lif.stepWithMembrane c p) (Snn.Lif.init [| 1 |] Float64) x

    assertEqualValues "generic spikes" z r.Spikes
    assertClose "generic membrane" 1e-14 1e-15 v1 r.Membrane

[<Fact>]
let ``a run continues from a final state exactly as one long run`` () =
    for spec in
        [
            lifSpec
            { lifSpec with
                RefractorySteps = 2
                Reset = Snn.BySubtraction
            }
        ] do
        let c, p = Snn.Lif.config spec, Snn.Lif.paramsAs Float64 spec
        let s0 = Snn.Lif.init [| 3; 4 |] Float64
        let whole = Fused.lifRun c p s0 currents
        let first = Fused.lifRun c p s0 (currents.Narrow(0, 0, 12))
        let second = Fused.lifRun c p first.Final (currents.Narrow(0, 12, 8))
        assertEqualValues "spikes" whole.Spikes (Tensor.concat 0 [ first.Spikes; second.Spikes ])
        assertEqualValues "membrane" whole.Membrane (Tensor.concat 0 [ first.Membrane; second.Membrane ])
        assertEqualValues "current" whole.Current (Tensor.concat 0 [ first.Current; second.Current ])
        assertEqualValues "final V" whole.Final.V second.Final.V
        assertEqualValues "final refractory" whole.Final.Refractory second.Final.Refractory

    // The LI readout too.
    let lc, lp = Snn.Li.config Snn.Li.defaults, Snn.Li.paramsAs Float64 Snn.Li.defaults
    let s0 = Snn.Li.init [| 3; 4 |] Float64
    let whole = Fused.liRun lc lp s0 currents
    let first = Fused.liRun lc lp s0 (currents.Narrow(0, 0, 5))
    let second = Fused.liRun lc lp first.Final (currents.Narrow(0, 5, 15))
    assertEqualValues "li membrane" whole.Membrane (Tensor.concat 0 [ first.Membrane; second.Membrane ])

[<Fact>]
let ``heterogeneous populations: per-neuron parameters equal separate homogeneous runs`` () =
    let taus = [ 6e-3; 9e-3; 13e-3; 20e-3 ]

    let per: Snn.Lif.Params =
        { Snn.Lif.paramsAs Float64 lifSpec with
            TauMem = t64 [| 4 |] taus
        }

    let r = Fused.lifRun config per (Snn.Lif.init [| 3; 4 |] Float64) currents

    taus
    |> List.iteri (fun k tau ->
        let one = Snn.Lif.paramsAs Float64 { lifSpec with TauMem = tau }

        let rk =
            Fused.lifRun config one (Snn.Lif.init [| 3; 1 |] Float64) (currents.Narrow(2, k, 1))

        assertEqualValues $"neuron %d{k}" rk.Membrane (r.Membrane.Narrow(2, k, 1)))
