/// Neuron models against analytic solutions (closed forms of the discrete recurrences and of the
/// continuous equations as dt -> 0) and against reference integrations written here in scalar
/// Float64 code, independently of the library.
module SnnFunc.Tests.NeuronTests

open System
open Xunit
open SnnFunc
open SnnFunc.Tests.SnnCheck

/// Scans a step function over scalar inputs (one neuron, batch 1) from a given state; returns the
/// per-step outputs and states.
let private run (step: 'S -> Tensor -> 'S * 'Y) (init: 'S) (inputs: float[]) =
    let xs = t64 inputs [| inputs.Length; 1 |]
    Ad.scan (fun s x -> let s', y = step s x in s', (y, s')) init xs

let private scalarState (v: float) = t64 [| v |] [| 1 |]

let private lifState v i : Snn.Lif.State =
    {
        V = scalarState v
        I = scalarState i
        Refractory = scalarState 0.0
    }

/// Membrane before reset of the LIF run, one value per step.
let private lifMembrane (p: Snn.Lif.Spec) (init: Snn.Lif.State) (inputs: float[]) =
    let _, ((z, v), _) = run (Snn.Lif.stepWithMembraneOf p) init inputs
    values z, values v

let private noSpikes = { Snn.Lif.defaults with VTh = 1e9 }

// ---------------------------------------------------------------------------------------------
// LIF and LI: closed forms

[<Fact>]
let ``LIF membrane under a constant input current equals the closed form of the discrete recurrence`` () =
    let p =
        { noSpikes with
            VLeak = 0.15
            Dt = 1e-4
        }

    let a, b = p.Dt / p.TauMem, 1.0 - p.Dt / p.TauSyn
    let r, c = 1.0 - a, 0.02
    let iInf = c / (1.0 - b)
    let n = 400
    let _, v = lifMembrane p (lifState 0.0 0.0) (Array.create n c)

    // v_n = vL (1 - r^n) + I∞ (1 - r^n) - a I∞ (r^n - b^n) / (r - b), with i_k = I∞ (1 - b^k).
    let expected =
        Array.init n (fun k ->
            let n = float (k + 1)

            p.VLeak * (1.0 - r ** n) + iInf * (1.0 - r ** n)
            - a * iInf * (r ** n - b ** n) / (r - b))

    assertAllClose "LIF constant current" 1e-11 1e-14 expected v

[<Fact>]
let ``LIF membrane converges to the continuous solution as dt -> 0 (first order)`` () =
    let tauS, tauM, vLeak, iInf, tEnd = 5e-3, 10e-3, 0.1, 0.8, 20e-3

    // tauS di/dt = -i + I∞,  tauM dv/dt = vL - v + i,  v(0) = i(0) = 0.
    let exact (t: float) =
        vLeak * (1.0 - exp (-t / tauM))
        + iInf * (1.0 - (tauM * exp (-t / tauM) - tauS * exp (-t / tauS)) / (tauM - tauS))

    let errorAt (dt: float) =
        let p =
            { noSpikes with
                TauSyn = tauS
                TauMem = tauM
                VLeak = vLeak
                Dt = dt
            }

        let n = int (Math.Round(tEnd / dt))
        // The drive that makes the discrete current approach I∞: input I∞ dt / tauS per step.
        let _, v = lifMembrane p (lifState 0.0 0.0) (Array.create n (iInf * dt / tauS))
        Array.init n (fun k -> abs (v[k] - exact (float (k + 1) * dt))) |> Array.max

    let errors = [| 1e-4; 5e-5; 2.5e-5; 1.25e-5 |] |> Array.map errorAt
    Assert.True(errors[3] < 2e-3 * exact tEnd, $"error %g{errors[3]} too large")

    for k in 1 .. errors.Length - 1 do
        let ratio = errors[k] / errors[k - 1]
        Assert.True(ratio > 0.4 && ratio < 0.6, $"halving dt should halve the error: %A{errors}")

[<Fact>]
let ``PSP of the exponential synapse: discrete closed form and the continuous difference of exponentials`` () =
    let w = 0.7

    let psp (dt: float) (n: int) =
        let p = { noSpikes with Dt = dt }
        let inputs = Array.init n (fun k -> if k = 0 then w else 0.0)
        snd (lifMembrane p (lifState 0.0 0.0) inputs)

    // Discrete: v_n = a w (r^(n-1) - b^(n-1)) / (r - b).
    let dt = 1e-4
    let a, b = dt / 10e-3, 1.0 - dt / 5e-3
    let r = 1.0 - a
    let v = psp dt 600

    let expected =
        Array.init 600 (fun k -> let n = float (k + 1) in a * w * (r ** (n - 1.0) - b ** (n - 1.0)) / (r - b))

    assertAllClose "discrete PSP" 1e-11 1e-15 expected v

    // Continuous: v(t) = w tauS / (tauS - tauM) (e^(-t/tauS) - e^(-t/tauM)), peak at
    // t* = tauM tauS / (tauM - tauS) ln(tauM / tauS).
    let cont (t: float) =
        w * 5e-3 / (5e-3 - 10e-3) * (exp (-t / 5e-3) - exp (-t / 10e-3))

    let tPeak = 10e-3 * 5e-3 / 5e-3 * log 2.0

    for dt in [ 1e-5; 2e-6 ] do
        let n = int (30e-3 / dt)
        let v = psp dt n

        let maxErr =
            Array.init n (fun k -> abs (v[k] - cont (float (k + 1) * dt))) |> Array.max

        Assert.True(maxErr < 2.0 * dt / 5e-3 * w, $"dt %g{dt}: PSP error %g{maxErr}")
        let peakStep = Array.findIndex ((=) (Array.max v)) v
        Assert.True(abs (float (peakStep + 1) * dt - tPeak) <= 2.0 * dt, $"dt %g{dt}: peak at step %d{peakStep}, expected t* = %g{tPeak}")
        Assert.Equal(cont tPeak, Array.max v, 2)

[<Fact>]
let ``LI readout: PSP plus leak in closed form`` () =
    let p =
        { Snn.Li.defaults with
            VLeak = -0.3
            Dt = 2e-4
            TauMem = 8e-3
            TauSyn = 3e-3
        }

    let a, b = p.Dt / p.TauMem, 1.0 - p.Dt / p.TauSyn
    let r, w, n = 1.0 - a, 1.3, 300

    let init: Snn.Li.State =
        {
            V = scalarState 0.0
            I = scalarState 0.0
        }

    let (_, (v, _)) =
        run (Snn.Li.stepOf p) init (Array.init n (fun k -> if k = 0 then w else 0.0))

    let expected =
        Array.init n (fun k -> let n = float (k + 1) in p.VLeak * (1.0 - r ** n) + a * w * (r ** (n - 1.0) - b ** (n - 1.0)) / (r - b))

    assertAllClose "LI" 1e-11 1e-15 expected (values v)

// ---------------------------------------------------------------------------------------------
// LIF firing: closed-form period, continuous limit, and a scalar reference integration

[<Fact>]
let ``LIF under a constant synaptic current fires periodically with the closed-form period`` () =
    let p =
        { Snn.Lif.defaults with
            Dt = 1e-5
            VLeak = 0.0
            VReset = 0.1
        }

    let i0 = 1.5
    let a, b = p.Dt / p.TauMem, 1.0 - p.Dt / p.TauSyn
    let r = 1.0 - a
    let n = 6000
    // Current held at i0: start at i0, feed back what the synapse loses each step.
    let z, _ = lifMembrane p (lifState p.VReset i0) (Array.create n (i0 * (1.0 - b)))
    // From VReset the membrane is u∞ + (VReset - u∞) r^k (u∞ = i0); it first exceeds VTh at k*.
    let ratio = log ((i0 - p.VTh) / (i0 - p.VReset)) / log r
    Assert.True(ratio - floor ratio > 0.01 && ratio - floor ratio < 0.99, "choose a current away from a tie")
    let period = int (floor ratio) + 1

    let spikes =
        z |> Array.indexed |> Array.filter (fun (_, s) -> s = 1.0) |> Array.map fst

    Assert.Equal<int[]>(Array.init (n / period) (fun k -> (k + 1) * period - 1), spikes)
    // Continuous limit: the interspike interval tauM ln((i0 - VReset) / (i0 - VTh)).
    let isi = p.TauMem * log ((i0 - p.VReset) / (i0 - p.VTh))
    Assert.True(abs (float period * p.Dt - isi) < 2.0 * p.Dt + 1e-3 * isi, $"period %d{period} steps vs ISI %g{isi} s")

/// The LIF recurrence in scalar code (the reference integration): spikes and membrane before reset.
let private referenceLif (p: Snn.Lif.Spec) (inputs: float[]) =
    let mutable v, i = 0.0, 0.0
    let a, b = p.Dt / p.TauMem, 1.0 - p.Dt / p.TauSyn

    [|
        for x in inputs do
            let v1 = v + a * (p.VLeak - v + i)
            i <- b * i + x
            let z = if v1 > p.VTh then 1.0 else 0.0

            v <-
                match p.Reset with
                | _ when z = 0.0 -> v1
                | Snn.ToValue -> p.VReset
                | Snn.BySubtraction -> v1 - (p.VTh - p.VReset)

            yield z, v1
    |]

[<Fact>]
let ``LIF with both resets equals a scalar reference integration`` () =
    let inputs = values (uniform 5L [| 500 |] -0.1 0.6)

    for reset in [ Snn.ToValue; Snn.BySubtraction ] do
        let p =
            { Snn.Lif.defaults with
                Reset = reset
                VReset = -0.1
                VLeak = 0.05
                Dt = 5e-4
            }

        let z, v = lifMembrane p (lifState 0.0 0.0) inputs
        let expected = referenceLif p inputs
        Assert.True((Array.sum z) >= 10.0, "the input should make the neuron fire")
        Assert.Equal<float[]>(Array.map fst expected, z)
        assertAllClose $"membrane %A{reset}" 1e-13 1e-14 (Array.map snd expected) v

    // Subtraction keeps the overshoot: after a spike the membrane is v1 - (VTh - VReset).
    let p =
        { Snn.Lif.defaults with
            Reset = Snn.BySubtraction
            VReset = -0.1
        }

    let s, (z, v1) =
        Snn.Lif.stepWithMembraneOf
            p
            {
                V = scalarState 1.05
                I = scalarState 2.0
                Refractory = scalarState 0.0
            }
            (scalarState 0.0)

    Assert.Equal(1.0, (values z)[0])
    Assert.Equal((values v1)[0] - 1.1, (values s.V)[0], 15)

// ---------------------------------------------------------------------------------------------
// IF: counting

[<Fact>]
let ``IF counts inputs: spike counts and residual charge`` () =
    let count (reset: Snn.Reset) =
        let p = { Snn.IF.defaults with Reset = reset }

        let s, (z, _) =
            run (Snn.IF.stepOf p) (Snn.IF.init [| 1 |] Float64) (Array.create 100 0.25)

        Array.sum (values z), (values s.V)[0], values z

    // Reset to 0: 0.25, 0.5, 0.75, 1.0 (not above VTh: H(0) = 0), 1.25 -> spike; period 5.
    let n, v, z = count Snn.ToValue
    Assert.Equal(20.0, n)
    Assert.Equal(0.0, v)
    Assert.Equal(1.0, z[4])
    Assert.Equal(0.0, z[3])
    // Subtraction conserves charge: 100 · 0.25 = spikes · (VTh - VReset) + final v.
    let n, v, _ = count Snn.BySubtraction
    Assert.Equal(24.0, n)
    Assert.Equal(1.0, v)
    // The layer gives the same counts over a batch of rates.
    let rates = [| 0.0; 0.1; 0.25; 0.5; 1.5 |]

    let x =
        Tensor.FromArray(Array.init (100 * rates.Length) (fun k -> rates[k % rates.Length]), 100, 1, rates.Length)

    let z =
        Layer.apply
            (Layers.integrateAndFire
                { Snn.IF.defaults with
                    Reset = Snn.BySubtraction
                })
            NoParams
            x

    let counts = values (z.Sum 0)
    // At most one spike per step: a rate above the threshold saturates at one spike per step.
    let expected =
        rates
        |> Array.map (fun u ->
            let total = float32 u * 100.0f in

            if total = 0.0f then
                0.0
            else
                min 100.0 (ceil (float total) - 1.0))

    Assert.Equal<float[]>(expected, counts)

// ---------------------------------------------------------------------------------------------
// ALIF: threshold adaptation

/// The ALIF recurrence in scalar code: spikes and the adaptation variable after each step.
let private referenceAlif (p: Snn.Alif.Spec) (inputs: float[]) =
    let q = p.Lif
    let mutable v, i, adapt = 0.0, 0.0, 0.0

    [|
        for x in inputs do
            let v1 = v + (q.VLeak - v + i) * (q.Dt / q.TauMem)
            i <- i * (1.0 - q.Dt / q.TauSyn) + x
            let threshold = adapt * p.Beta + q.VTh
            let z = if v1 - threshold > 0.0 then 1.0 else 0.0
            adapt <- adapt * (1.0 - q.Dt / p.TauAdapt) + z
            v <- if z = 1.0 then q.VReset else v1
            yield z, adapt
    |]

[<Fact>]
let ``ALIF threshold adaptation equals a scalar reference and lengthens the intervals`` () =
    let p =
        { Snn.Alif.defaults with
            Beta = 0.5
            TauAdapt = 50e-3
            Lif = { Snn.Lif.defaults with Dt = 1e-4 }
        }

    let n, drive = 3000, 0.4

    let init: Snn.Alif.State =
        {
            V = scalarState 0.0
            I = scalarState 0.0
            A = scalarState 0.0
            Refractory = scalarState 0.0
        }

    let _, (z, states) = run (Snn.Alif.stepOf p) init (Array.create n drive)
    let expected = referenceAlif p (Array.create n drive)
    let z = values z
    Assert.Equal<float[]>(Array.map fst expected, z)
    assertAllClose "adaptation variable" 1e-12 1e-15 (Array.map snd expected) (values states.A)

    let spikes =
        z |> Array.indexed |> Array.filter (fun (_, s) -> s = 1.0) |> Array.map fst

    Assert.True(spikes.Length >= 5, $"%d{spikes.Length} spikes")
    let isis = Array.pairwise spikes |> Array.map (fun (x, y) -> y - x)
    Assert.True(isis[isis.Length - 1] > isis[0], $"intervals should lengthen: %A{isis}")
    // Without adaptation (Beta = 0) ALIF is LIF, spike for spike.
    let plain = { p with Beta = 0.0 }
    let _, (z0, _) = run (Snn.Alif.stepOf plain) init (Array.create n drive)
    let zLif, _ = lifMembrane p.Lif (lifState 0.0 0.0) (Array.create n drive)
    Assert.Equal<float[]>(zLif, values z0)
    Assert.True(Array.sum zLif > Array.sum z)

// ---------------------------------------------------------------------------------------------
// AdEx: Euler reference at the same dt, and a fine-step RK4 reference of the continuous model

type private AdExRef =
    {
        mutable V: float
        mutable W: float
        mutable I: float
        mutable R: float
    }

/// One Euler step of AdEx in scalar code, in the order the model documents.
let private adexEuler (p: Snn.AdEx.Spec) (s: AdExRef) (x: float) =
    let e = exp (min ((s.V - p.VT) / p.DeltaT) 20.0) * p.DeltaT
    let dv = (p.VLeak - s.V + e - s.W + s.I) * (p.Dt / p.TauMem)
    let v = if s.R <= 0.0 then s.V + dv else s.V
    let w = s.W + ((s.V - p.VLeak) * p.A - s.W) * (p.Dt / p.TauAdapt)
    s.I <- s.I * (1.0 - p.Dt / p.TauSyn) + x
    let z = v - p.VTh > 0.0
    s.V <- if z then p.VReset else v
    s.W <- if z then w + p.B else w
    s.R <- max (s.R - p.Dt) 0.0 + (if z then p.TRef else 0.0)
    if z then 1.0 else 0.0

let private adexParams =
    { Snn.AdEx.defaults with
        A = 0.4
        B = 0.08
        Dt = 1e-5
        TauAdapt = 30e-3
    }

let private adexInit (i0: float) : Snn.AdEx.State =
    {
        V = scalarState 0.0
        I = scalarState i0
        W = scalarState 0.0
        Refractory = scalarState 0.0
    }

[<Fact>]
let ``AdEx equals a scalar Euler reference at the same dt (spikes, adaptation, refractory period)`` () =
    let p = adexParams
    let n, i0 = 4000, 1.2
    let drive = i0 * (p.Dt / p.TauSyn)
    let _, (z, s) = run (Snn.AdEx.stepOf p) (adexInit i0) (Array.create n drive)
    let state = { V = 0.0; W = 0.0; I = i0; R = 0.0 }

    let expected =
        Array.init n (fun _ -> let z = adexEuler p state drive in z, state.V, state.W)

    let z = values z
    Assert.True(Array.sum z >= 3.0, "AdEx should fire")
    Assert.Equal<float[]>(expected |> Array.map (fun (z, _, _) -> z), z)
    assertAllClose "AdEx V" 1e-12 1e-14 (expected |> Array.map (fun (_, v, _) -> v)) (values s.V)
    assertAllClose "AdEx W" 1e-12 1e-14 (expected |> Array.map (fun (_, _, w) -> w)) (values s.W)
    // The membrane stays at VReset for TRef after each spike.
    let v = values s.V
    let first = Array.findIndex ((=) 1.0) z
    let frozen = int (p.TRef / p.Dt) - 1

    for k in first .. first + frozen do
        Assert.Equal(p.VReset, v[k])

    Assert.True(v[first + frozen + 2] > p.VReset)

/// RK4 of the continuous AdEx with a constant synaptic current, reset and refractory period handled
/// at the fine steps; returns the membrane sampled every `every` fine steps and the spike times.
let private adexRk4 (p: Snn.AdEx.Spec) (i0: float) (h: float) (fineSteps: int) (every: int) =
    let f (v: float) (w: float) =
        (p.VLeak - v + p.DeltaT * exp ((v - p.VT) / p.DeltaT) - w + i0) / p.TauMem, (p.A * (v - p.VLeak) - w) / p.TauAdapt

    let mutable v, w, refractoryUntil = 0.0, 0.0, -1.0
    let samples = ResizeArray()
    let spikes = ResizeArray()

    for k in 1..fineSteps do
        let t = float k * h
        let active = t > refractoryUntil + 1e-12
        let k1v, k1w = f v w
        let k2v, k2w = f (v + 0.5 * h * k1v) (w + 0.5 * h * k1w)
        let k3v, k3w = f (v + 0.5 * h * k2v) (w + 0.5 * h * k2w)
        let k4v, k4w = f (v + h * k3v) (w + h * k3w)
        let v' = v + h / 6.0 * (k1v + 2.0 * k2v + 2.0 * k3v + k4v)
        w <- w + h / 6.0 * (k1w + 2.0 * k2w + 2.0 * k3w + k4w)

        if active then
            v <- v'

        if v > p.VTh then
            spikes.Add t
            v <- p.VReset
            w <- w + p.B
            refractoryUntil <- t + p.TRef

        if k % every = 0 then
            samples.Add v

    samples.ToArray(), spikes.ToArray()

[<Fact>]
let ``AdEx converges to a fine-step RK4 integration: subthreshold trajectory and spike times`` () =
    // Subthreshold, with the exponential term and the adaptation coupling both active.
    let sub = { adexParams with VTh = 5.0 }
    let i0, tEnd = 0.62, 40e-3

    let errorAt (dt: float) =
        let p = { sub with Dt = dt }
        let n = int (Math.Round(tEnd / dt))

        let _, (_, s) =
            run (Snn.AdEx.stepOf p) (adexInit i0) (Array.create n (i0 * (dt / p.TauSyn)))

        let refine = 8
        let reference, _ = adexRk4 p i0 (dt / float refine) (n * refine) refine
        let v = values s.V
        Assert.True(Array.max v > 0.45 && Array.max v < 0.7, $"v peaks at %g{Array.max v}")
        Array.map2 (fun a b -> abs (a - b)) v reference |> Array.max

    let e1, e2, e3 = errorAt 4e-5, errorAt 2e-5, errorAt 1e-5
    Assert.True(e3 < 1e-3, $"error %g{e3}")
    Assert.True(e2 / e1 > 0.4 && e2 / e1 < 0.6 && e3 / e2 > 0.4 && e3 / e2 < 0.6, $"first-order convergence expected: %g{e1} %g{e2} %g{e3}")

    // Spiking: the Euler spike times approach the RK4 ones.
    let p = { adexParams with Dt = 5e-6 }
    let i0, n = 1.2, 8000

    let _, (z, _) =
        run (Snn.AdEx.stepOf p) (adexInit i0) (Array.create n (i0 * (p.Dt / p.TauSyn)))

    let times =
        values z
        |> Array.indexed
        |> Array.filter (fun (_, s) -> s = 1.0)
        |> Array.map (fun (k, _) -> float (k + 1) * p.Dt)

    let _, reference = adexRk4 p i0 (p.Dt / 10.0) (n * 10) 10
    Assert.True(times.Length >= 3 && abs (times.Length - reference.Length) <= 1, $"%A{times} vs %A{reference}")

    for k in 0..2 do
        Assert.True(abs (times[k] - reference[k]) < 0.02 * reference[k] + 3.0 * p.Dt, $"spike %d{k}: %g{times[k]} vs %g{reference[k]}")
