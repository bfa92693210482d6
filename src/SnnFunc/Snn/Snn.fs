/// Spiking neuron models as parameter records plus pure step functions over named state records,
/// and the spike nonlinearity with surrogate gradients.
///
/// Time is in seconds, all updates are explicit Euler steps of length Dt, and the layout is
/// time-major: a step sees [batch; neurons] tensors.
[<RequireQualifiedAccess>]
module SnnFunc.Snn

open System

/// What happens to the membrane on a spike. The reset carries no gradient (as in the peers).
type Reset =
    /// v <- VReset.
    | ToValue
    /// v <- v - (VTh - VReset): keeps the overshoot.
    | BySubtraction

/// Heaviside spike with a surrogate derivative: 1 where x > 0, 0 where x <= 0 (so exactly at the
/// threshold there is no spike). The derivative is `surrogate.Derivative x`, given as a forward
/// rule, so forward mode (jvp) and reverse mode (grad) both use it.
let spike (surrogate: SurrogateFn) : Tensor -> Tensor =
    Ad.customJvp (fun x -> x.Gt 0.0) (fun x dx -> x.Gt 0.0, dx * surrogate.Derivative x)

let private check (model: string) (name: string) (ok: bool) (detail: string) =
    if not ok then
        invalidArg name $"%s{model}: %s{detail}"

/// Every parameter is checked for NaN and ±inf first: the range checks below are comparisons,
/// which NaN passes silently, and an infinite reset or leak turns membranes into NaN (or, in the
/// fused kernels, into a different finite value).
let private checkFinite (model: string) (name: string) (value: float) =
    check model name (not (Double.IsNaN value || Double.IsInfinity value)) $"%s{name} must be finite, got %g{value}"

let private checkTau (model: string) (name: string) (tau: float) (dt: float) =
    check model name (tau > 0.0 && not (Double.IsInfinity tau)) $"%s{name} must be positive and finite, got %g{tau}"
    check model name (dt < tau) $"Dt = %g{dt} s must be smaller than %s{name} = %g{tau} s (the Euler step would be unstable)"

let private checkDt (model: string) (dt: float) =
    check model "Dt" (dt > 0.0 && not (Double.IsInfinity dt)) $"Dt must be positive and finite, got %g{dt}"

let private checkThreshold (model: string) (vTh: float) (vReset: float) =
    check model "VTh" (vTh > vReset) $"the threshold VTh = %g{vTh} must lie above the reset VReset = %g{vReset}"

/// The spike after reset handling: the new membrane from the pre-reset one and the spikes.
let private resetMembrane (reset: Reset) (vTh: float) (vReset: float) (v: Tensor) (z: Tensor) =
    let z = Ad.stopGradient z

    match reset with
    | ToValue -> v * (1.0 - z) + z * vReset
    | BySubtraction -> v - z * (vTh - vReset)

/// Current-based leaky integrate-and-fire neuron with an exponential synapse.
module Lif =
    type Params =
        {
            TauSyn: float
            TauMem: float
            VLeak: float
            VTh: float
            VReset: float
            Reset: Reset
            Dt: float
            Surrogate: SurrogateFn
        }

    type State = { V: Tensor; I: Tensor }

    /// Checks the parameters (positive time constants larger than Dt, threshold above reset).
    let validate (p: Params) =
        checkFinite "Lif" "TauSyn" p.TauSyn
        checkFinite "Lif" "TauMem" p.TauMem
        checkFinite "Lif" "VLeak" p.VLeak
        checkFinite "Lif" "VTh" p.VTh
        checkFinite "Lif" "VReset" p.VReset
        checkFinite "Lif" "Dt" p.Dt
        checkDt "Lif" p.Dt
        checkTau "Lif" "TauSyn" p.TauSyn p.Dt
        checkTau "Lif" "TauMem" p.TauMem p.Dt
        checkThreshold "Lif" p.VTh p.VReset
        p

    /// Defaults of the common Yin-Yang/MNIST setups: tauSyn 5 ms, tauMem 10 ms, threshold 1, reset
    /// to 0, dt 1 ms, SuperSpike(100).
    let defaults =
        {
            TauSyn = 5e-3
            TauMem = 10e-3
            VLeak = 0.0
            VTh = 1.0
            VReset = 0.0
            Reset = ToValue
            Dt = 1e-3
            Surrogate = Surrogate.superSpike 100.0
        }

    /// Zero state for `shape` (e.g. [batch; neurons]).
    let init (shape: int[]) (dtype: DType) =
        {
            V = Tensor.Full(shape, 0.0, dtype)
            I = Tensor.Full(shape, 0.0, dtype)
        }

    /// One step: the membrane integrates the synaptic current of the previous step, the current
    /// decays and receives `input`, the neuron spikes where v exceeds VTh and resets. Returns the
    /// new state, the spikes and the membrane before the reset.
    let stepWithMembrane (p: Params) (s: State) (input: Tensor) : State * (Tensor * Tensor) =
        let v = s.V + (p.VLeak - s.V + s.I) * (p.Dt / p.TauMem)
        let i = s.I * (1.0 - p.Dt / p.TauSyn) + input
        let z = spike p.Surrogate (v - p.VTh)

        {
            V = resetMembrane p.Reset p.VTh p.VReset v z
            I = i
        },
        (z, v)

    /// One step (see stepWithMembrane); the output is the spikes.
    let step (p: Params) (s: State) (input: Tensor) : State * Tensor =
        let s', (z, _) = stepWithMembrane p s input
        s', z

/// Leaky integrator (non-spiking readout) with an exponential synapse; outputs the membrane.
module Li =
    type Params =
        {
            TauSyn: float
            TauMem: float
            VLeak: float
            Dt: float
        }

    type State = { V: Tensor; I: Tensor }

    let validate (p: Params) =
        checkFinite "Li" "TauSyn" p.TauSyn
        checkFinite "Li" "TauMem" p.TauMem
        checkFinite "Li" "VLeak" p.VLeak
        checkFinite "Li" "Dt" p.Dt
        checkDt "Li" p.Dt
        checkTau "Li" "TauSyn" p.TauSyn p.Dt
        checkTau "Li" "TauMem" p.TauMem p.Dt
        p

    let defaults =
        {
            TauSyn = 5e-3
            TauMem = 10e-3
            VLeak = 0.0
            Dt = 1e-3
        }

    let init (shape: int[]) (dtype: DType) =
        {
            V = Tensor.Full(shape, 0.0, dtype)
            I = Tensor.Full(shape, 0.0, dtype)
        }

    /// One step; the output is the new membrane potential.
    let step (p: Params) (s: State) (input: Tensor) : State * Tensor =
        let v = s.V + (p.VLeak - s.V + s.I) * (p.Dt / p.TauMem)
        let i = s.I * (1.0 - p.Dt / p.TauSyn) + input
        { V = v; I = i }, v

/// Adaptive LIF (Bellec et al. 2018): the threshold rises by Beta per unit of the adaptation
/// variable A, which jumps by 1 on each spike and decays with TauAdapt.
module Alif =
    type Params =
        {
            Lif: Lif.Params
            TauAdapt: float
            Beta: float
        }

    type State = { V: Tensor; I: Tensor; A: Tensor }

    let validate (p: Params) =
        // The LIF part's errors say "Alif" too: the caller validated an Alif.
        checkFinite "Alif" "TauSyn" p.Lif.TauSyn
        checkFinite "Alif" "TauMem" p.Lif.TauMem
        checkFinite "Alif" "VLeak" p.Lif.VLeak
        checkFinite "Alif" "VTh" p.Lif.VTh
        checkFinite "Alif" "VReset" p.Lif.VReset
        checkFinite "Alif" "Dt" p.Lif.Dt
        checkFinite "Alif" "TauAdapt" p.TauAdapt
        checkFinite "Alif" "Beta" p.Beta
        Lif.validate p.Lif |> ignore
        checkTau "Alif" "TauAdapt" p.TauAdapt p.Lif.Dt
        check "Alif" "Beta" (p.Beta >= 0.0) $"Beta must be non-negative, got %g{p.Beta}"
        p

    let defaults =
        {
            Lif = Lif.defaults
            TauAdapt = 200e-3
            Beta = 0.2
        }

    let init (shape: int[]) (dtype: DType) =
        {
            V = Tensor.Full(shape, 0.0, dtype)
            I = Tensor.Full(shape, 0.0, dtype)
            A = Tensor.Full(shape, 0.0, dtype)
        }

    let step (p: Params) (s: State) (input: Tensor) : State * Tensor =
        let q = p.Lif
        let v = s.V + (q.VLeak - s.V + s.I) * (q.Dt / q.TauMem)
        let i = s.I * (1.0 - q.Dt / q.TauSyn) + input
        let threshold = s.A * p.Beta + q.VTh
        let z = spike q.Surrogate (v - threshold)
        let a = s.A * (1.0 - q.Dt / p.TauAdapt) + z
        let zs = Ad.stopGradient z

        let v' =
            match q.Reset with
            | ToValue -> v * (1.0 - zs) + zs * q.VReset
            | BySubtraction -> v - zs * (threshold - q.VReset)

        { V = v'; I = i; A = a }, z

/// Adaptive exponential integrate-and-fire (Brette & Gerstner 2005), the neuron BrainScaleS-2
/// implements: exponential spike initiation, an adaptation current W with subthreshold coupling A
/// and spike-triggered increment B, an exponential synapse, and a refractory period.
///   tauMem dv/dt = (vLeak - v) + DeltaT exp((v - VT)/DeltaT) - w + i
///   tauAdapt dw/dt = A (v - vLeak) - w;   on a spike: v <- VReset, w <- w + B, clamp for TRef.
module AdEx =
    type Params =
        {
            TauSyn: float
            TauMem: float
            TauAdapt: float
            VLeak: float
            /// Exponential threshold (the soft threshold where the upswing starts).
            VT: float
            /// Slope factor of the exponential term (must be positive).
            DeltaT: float
            /// Spike detection threshold (the peak), above VT.
            VTh: float
            VReset: float
            A: float
            B: float
            TRef: float
            Dt: float
            Surrogate: SurrogateFn
        }

    type State =
        {
            V: Tensor
            I: Tensor
            W: Tensor
            /// Remaining refractory time in seconds (0 when not refractory).
            Refractory: Tensor
        }

    let validate (p: Params) =
        checkFinite "AdEx" "TauSyn" p.TauSyn
        checkFinite "AdEx" "TauMem" p.TauMem
        checkFinite "AdEx" "TauAdapt" p.TauAdapt
        checkFinite "AdEx" "VLeak" p.VLeak
        checkFinite "AdEx" "VT" p.VT
        checkFinite "AdEx" "DeltaT" p.DeltaT
        checkFinite "AdEx" "VTh" p.VTh
        checkFinite "AdEx" "VReset" p.VReset
        checkFinite "AdEx" "A" p.A
        checkFinite "AdEx" "B" p.B
        checkFinite "AdEx" "TRef" p.TRef
        checkFinite "AdEx" "Dt" p.Dt
        checkDt "AdEx" p.Dt
        checkTau "AdEx" "TauSyn" p.TauSyn p.Dt
        checkTau "AdEx" "TauMem" p.TauMem p.Dt
        checkTau "AdEx" "TauAdapt" p.TauAdapt p.Dt
        check "AdEx" "DeltaT" (p.DeltaT > 0.0) $"DeltaT must be positive, got %g{p.DeltaT}"
        checkThreshold "AdEx" p.VTh p.VReset
        check "AdEx" "TRef" (p.TRef >= 0.0) $"TRef must be non-negative, got %g{p.TRef}"
        p

    /// Dimensionless defaults (membrane in units where rest = 0 and the spike peak is 1).
    let defaults =
        {
            TauSyn = 5e-3
            TauMem = 10e-3
            TauAdapt = 100e-3
            VLeak = 0.0
            VT = 0.6
            DeltaT = 0.05
            VTh = 1.0
            VReset = 0.0
            A = 0.0
            B = 0.05
            TRef = 2e-3
            Dt = 1e-4
            Surrogate = Surrogate.superSpike 100.0
        }

    let init (shape: int[]) (dtype: DType) =
        let zeros () = Tensor.Full(shape, 0.0, dtype)

        {
            V = zeros ()
            I = zeros ()
            W = zeros ()
            Refractory = zeros ()
        }

    let step (p: Params) (s: State) (input: Tensor) : State * Tensor =
        // The exponent is capped so a runaway upswing gives a large finite value, not inf/NaN.
        let exponential =
            ((s.V - p.VT) / p.DeltaT).Minimum(Tensor.Scalar(20.0, s.V.DType)).Exp()
            * p.DeltaT

        let dv = (p.VLeak - s.V + exponential - s.W + s.I) * (p.Dt / p.TauMem)
        let active = s.Refractory.Le 0.0 |> Ad.stopGradient
        let v = s.V + dv * active
        let w = s.W + ((s.V - p.VLeak) * p.A - s.W) * (p.Dt / p.TauAdapt)
        let i = s.I * (1.0 - p.Dt / p.TauSyn) + input
        let z = spike p.Surrogate (v - p.VTh)
        let zs = Ad.stopGradient z

        {
            V = v * (1.0 - zs) + zs * p.VReset
            I = i
            W = w + zs * p.B
            Refractory = (s.Refractory - p.Dt).Relu() + zs * p.TRef
        },
        z

/// Non-leaky integrate-and-fire: v <- v + input, spike and reset.
module IF =
    type Params =
        {
            VTh: float
            VReset: float
            Reset: Reset
            Surrogate: SurrogateFn
        }

    type State = { V: Tensor }

    let validate (p: Params) =
        checkFinite "IF" "VTh" p.VTh
        checkFinite "IF" "VReset" p.VReset
        checkThreshold "IF" p.VTh p.VReset
        p

    let defaults =
        {
            VTh = 1.0
            VReset = 0.0
            Reset = ToValue
            Surrogate = Surrogate.superSpike 100.0
        }

    let init (shape: int[]) (dtype: DType) = { V = Tensor.Full(shape, 0.0, dtype) }

    let step (p: Params) (s: State) (input: Tensor) : State * Tensor =
        let v = s.V + input
        let z = spike p.Surrogate (v - p.VTh)

        {
            V = resetMembrane p.Reset p.VTh p.VReset v z
        },
        z
