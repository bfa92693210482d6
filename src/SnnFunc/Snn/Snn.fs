/// Spiking neuron models — a static Config, a record of parameter tensors and a pure step function
/// over a named state record each — and the spike nonlinearity with surrogate gradients.
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

open SnnFunc.NeuronParams

/// The time constant the dynamics use for a parameter τ (seconds) at step dt: τ itself from 2·dt
/// up, and below a smooth barrier that approaches dt, so that a learned τ pushed under dt by a
/// gradient step leaves the Euler step stable (see NeuronParams.effectiveTau).
let effectiveTau (dt: float) (tau: Tensor) = NeuronParams.effectiveTau dt tau

/// The new membrane from the pre-reset one and the spikes z (which carry no gradient here).
let private resetMembrane (reset: Reset) (vTh: Tensor) (vReset: Tensor) (v: Tensor) (z: Tensor) =
    let z = Ad.stopGradient z

    match reset with
    | ToValue -> v * (1.0 - z) + z * vReset
    | BySubtraction -> v - z * (vTh - vReset)

/// Spikes where x > 0 outside refractory steps, and the refractory counter after them: a spike
/// starts `steps` silent steps; the counter is a float tensor of remaining steps.
let private refractorySpike (surrogate: SurrogateFn) (steps: int) (counter: Tensor) (x: Tensor) =
    if steps = 0 then
        spike surrogate x, counter
    else
        let silent = counter.Gt 0.0
        let z = spike surrogate x * (1.0 - silent)
        let zs = Ad.stopGradient z
        z, zs * float steps + (1.0 - zs) * (counter - 1.0).Relu()

/// Current-based leaky integrate-and-fire neuron with an exponential synapse.
///
///   v1 = v + dt/τm (vLeak - v + i)      (held at v while refractory)
///   i  = (1 - dt/τs) i + input
///   z  = v1 > vTh,  v = reset(v1, z)
///
/// `Config` is static, `Params` are tensors broadcastable to the neuron shape (rank 0 for a
/// homogeneous population, [N] per neuron), learnable and part of the parameter pytree. Time
/// constants enter through NeuronParams' barrier: τ as given from 2·Dt up, smoothly kept above Dt
/// below, so gradient steps can never make the Euler step unstable.
module Lif =
    /// A LIF population in host numbers (seconds; membrane units): what one writes, split into
    /// `config` and `params`.
    type Spec =
        {
            TauSyn: float
            TauMem: float
            VLeak: float
            VTh: float
            VReset: float
            Reset: Reset
            Dt: float
            Surrogate: SurrogateFn
            /// Steps a neuron stays silent, its membrane held, after a spike.
            RefractorySteps: int
        }

    /// The static part: not differentiated, not in the parameter tree.
    type Config =
        {
            Dt: float
            Reset: Reset
            Surrogate: SurrogateFn
            RefractorySteps: int
        }

    /// The learnable part: tensors broadcastable to the neuron shape.
    type Params =
        {
            TauSyn: Tensor
            TauMem: Tensor
            VLeak: Tensor
            VTh: Tensor
            VReset: Tensor
        }

    /// The state between steps; `Refractory` counts the silent steps left (0 without a refractory period).
    type State =
        {
            V: Tensor
            I: Tensor
            Refractory: Tensor
        }

    /// Checks a spec (finite values, time constants larger than Dt, threshold above reset).
    let validate (p: Spec) =
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
        checkRefractory "Lif" p.RefractorySteps
        p

    /// Defaults of the common Yin-Yang/MNIST setups: tauSyn 5 ms, tauMem 10 ms, threshold 1, reset
    /// to 0, dt 1 ms, SuperSpike(100), no refractory period.
    let defaults: Spec =
        {
            TauSyn = 5e-3
            TauMem = 10e-3
            VLeak = 0.0
            VTh = 1.0
            VReset = 0.0
            Reset = ToValue
            Dt = 1e-3
            Surrogate = Surrogate.superSpike 100.0
            RefractorySteps = 0
        }

    let config (p: Spec) : Config =
        {
            Dt = p.Dt
            Reset = p.Reset
            Surrogate = p.Surrogate
            RefractorySteps = p.RefractorySteps
        }

    /// The spec's parameters as rank-0 tensors of `dtype`.
    let paramsAs (dtype: DType) (p: Spec) : Params =
        {
            TauSyn = scalar dtype p.TauSyn
            TauMem = scalar dtype p.TauMem
            VLeak = scalar dtype p.VLeak
            VTh = scalar dtype p.VTh
            VReset = scalar dtype p.VReset
        }

    /// The spec's parameters as rank-0 Float32 tensors.
    let paramsOf (p: Spec) = paramsAs Float32 p

    /// Checks parameter tensors against a config, naming the neuron of the first bad value.
    let validateParams (c: Config) (p: Params) =
        checkDt "Lif" c.Dt
        checkRefractory "Lif" c.RefractorySteps
        checkTauTensor "Lif" "TauSyn" c.Dt p.TauSyn
        checkTauTensor "Lif" "TauMem" c.Dt p.TauMem
        checkEach "Lif" "VLeak" p.VLeak isFinite "must be finite"
        checkEach "Lif" "VTh" p.VTh isFinite "must be finite"
        checkEach "Lif" "VReset" p.VReset isFinite "must be finite"
        checkThresholdTensors "Lif" p.VTh p.VReset
        p

    /// Zero state for `shape` (e.g. [batch; neurons]).
    let init (shape: int[]) (dtype: DType) =
        {
            V = Tensor.Full(shape, 0.0, dtype)
            I = Tensor.Full(shape, 0.0, dtype)
            Refractory = Tensor.Full(shape, 0.0, dtype)
        }

    /// The per-step factors a = dt/τm and b = 1 - dt/τs (τ through the barrier), in `like`'s dtype:
    /// exactly what the fused kernel receives.
    let decays (c: Config) (p: Params) (like: Tensor) =
        let a = c.Dt / effectiveTau c.Dt (NeuronParams.like like p.TauMem)
        let b = 1.0 - c.Dt / effectiveTau c.Dt (NeuronParams.like like p.TauSyn)
        a, b

    /// One step: the membrane integrates the synaptic current of the previous step, the current
    /// decays and receives `input`, the neuron spikes where v exceeds VTh and resets. Returns the new
    /// state and the spikes, the membrane before the reset and the synaptic current.
    let rec stepFull (c: Config) (p: Params) (s: State) (input: Tensor) : State * (Tensor * Tensor * Tensor) =
        let a, b = decays c p s.V
        stepWithDecays c (a, b, like s.V p.VLeak, like s.V p.VTh, like s.V p.VReset) s input

    /// stepFull with the decay factors a, b and the other parameters given in the state's dtype:
    /// the form the fused kernel computes, which its twin scans.
    and stepWithDecays
        (c: Config)
        (a: Tensor, b: Tensor, vLeak: Tensor, vTh: Tensor, vReset: Tensor)
        (s: State)
        (input: Tensor)
        : State * (Tensor * Tensor * Tensor) =
        let integrated = s.V + (vLeak - s.V + s.I) * a

        let v =
            if c.RefractorySteps = 0 then
                integrated
            else
                Tensor.Where(s.Refractory.Gt 0.0, s.V, integrated)

        let i = s.I * b + input

        let z, counter =
            refractorySpike c.Surrogate c.RefractorySteps s.Refractory (v - vTh)

        {
            V = resetMembrane c.Reset vTh vReset v z
            I = i
            Refractory = counter
        },
        (z, v, i)

    /// One step (see stepFull); outputs the spikes and the membrane before the reset.
    let stepWithMembrane (c: Config) (p: Params) (s: State) (input: Tensor) : State * (Tensor * Tensor) =
        let s', (z, v, _) = stepFull c p s input
        s', (z, v)

    /// One step (see stepFull); the output is the spikes.
    let step (c: Config) (p: Params) (s: State) (input: Tensor) : State * Tensor =
        let s', (z, _, _) = stepFull c p s input
        s', z

    /// `step` of a spec (constant parameters in the state's dtype).
    let stepOf (p: Spec) : State -> Tensor -> State * Tensor =
        let c = config (validate p)
        fun s x -> step c (paramsAs s.V.DType p) s x

    /// `stepWithMembrane` of a spec (constant parameters in the state's dtype).
    let stepWithMembraneOf (p: Spec) : State -> Tensor -> State * (Tensor * Tensor) =
        let c = config (validate p)
        fun s x -> stepWithMembrane c (paramsAs s.V.DType p) s x

/// Leaky integrator (non-spiking readout) with an exponential synapse; outputs the membrane.
module Li =
    type Spec =
        {
            TauSyn: float
            TauMem: float
            VLeak: float
            Dt: float
        }

    type Config = { Dt: float }

    type Params =
        {
            TauSyn: Tensor
            TauMem: Tensor
            VLeak: Tensor
        }

    type State = { V: Tensor; I: Tensor }

    let validate (p: Spec) =
        checkFinite "Li" "TauSyn" p.TauSyn
        checkFinite "Li" "TauMem" p.TauMem
        checkFinite "Li" "VLeak" p.VLeak
        checkFinite "Li" "Dt" p.Dt
        checkDt "Li" p.Dt
        checkTau "Li" "TauSyn" p.TauSyn p.Dt
        checkTau "Li" "TauMem" p.TauMem p.Dt
        p

    let defaults: Spec =
        {
            TauSyn = 5e-3
            TauMem = 10e-3
            VLeak = 0.0
            Dt = 1e-3
        }

    let config (p: Spec) : Config = { Dt = p.Dt }

    let paramsAs (dtype: DType) (p: Spec) : Params =
        {
            TauSyn = scalar dtype p.TauSyn
            TauMem = scalar dtype p.TauMem
            VLeak = scalar dtype p.VLeak
        }

    let paramsOf (p: Spec) = paramsAs Float32 p

    let validateParams (c: Config) (p: Params) =
        checkDt "Li" c.Dt
        checkTauTensor "Li" "TauSyn" c.Dt p.TauSyn
        checkTauTensor "Li" "TauMem" c.Dt p.TauMem
        checkEach "Li" "VLeak" p.VLeak isFinite "must be finite"
        p

    let init (shape: int[]) (dtype: DType) =
        {
            V = Tensor.Full(shape, 0.0, dtype)
            I = Tensor.Full(shape, 0.0, dtype)
        }

    /// The per-step factors a = dt/τm and b = 1 - dt/τs, as Lif.decays.
    let decays (c: Config) (p: Params) (like: Tensor) =
        let a = c.Dt / effectiveTau c.Dt (NeuronParams.like like p.TauMem)
        let b = 1.0 - c.Dt / effectiveTau c.Dt (NeuronParams.like like p.TauSyn)
        a, b

    /// One step with the decay factors and the leak given in the state's dtype (what the fused
    /// kernel computes); outputs the new membrane potential and the synaptic current.
    let stepWithDecays (a: Tensor, b: Tensor, vLeak: Tensor) (s: State) (input: Tensor) : State * (Tensor * Tensor) =
        let v = s.V + (vLeak - s.V + s.I) * a
        let i = s.I * b + input
        { V = v; I = i }, (v, i)

    /// One step; outputs the new membrane potential and the synaptic current.
    let stepFull (c: Config) (p: Params) (s: State) (input: Tensor) : State * (Tensor * Tensor) =
        let a, b = decays c p s.V
        stepWithDecays (a, b, like s.V p.VLeak) s input

    /// One step; the output is the new membrane potential.
    let step (c: Config) (p: Params) (s: State) (input: Tensor) : State * Tensor =
        let s', (v, _) = stepFull c p s input
        s', v

    /// `step` of a spec (constant parameters in the state's dtype).
    let stepOf (p: Spec) : State -> Tensor -> State * Tensor =
        let c = config (validate p)
        fun s x -> step c (paramsAs s.V.DType p) s x

/// Adaptive LIF (Bellec et al. 2018): the threshold rises by Beta per unit of the adaptation
/// variable A, which jumps by 1 on each spike and decays with TauAdapt.
module Alif =
    type Spec =
        {
            Lif: Lif.Spec
            TauAdapt: float
            Beta: float
        }

    type Config = Lif.Config

    type Params =
        {
            Lif: Lif.Params
            TauAdapt: Tensor
            Beta: Tensor
        }

    type State =
        {
            V: Tensor
            I: Tensor
            A: Tensor
            Refractory: Tensor
        }

    let validate (p: Spec) =
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

    let defaults: Spec =
        {
            Lif = Lif.defaults
            TauAdapt = 200e-3
            Beta = 0.2
        }

    let config (p: Spec) : Config = Lif.config p.Lif

    let paramsAs (dtype: DType) (p: Spec) : Params =
        {
            Lif = Lif.paramsAs dtype p.Lif
            TauAdapt = scalar dtype p.TauAdapt
            Beta = scalar dtype p.Beta
        }

    let paramsOf (p: Spec) = paramsAs Float32 p

    let validateParams (c: Config) (p: Params) =
        Lif.validateParams c p.Lif |> ignore
        checkTauTensor "Alif" "TauAdapt" c.Dt p.TauAdapt
        checkEach "Alif" "Beta" p.Beta (fun v -> isFinite v && v >= 0.0) "must be finite and non-negative"
        p

    let init (shape: int[]) (dtype: DType) =
        let zeros () = Tensor.Full(shape, 0.0, dtype)

        {
            V = zeros ()
            I = zeros ()
            A = zeros ()
            Refractory = zeros ()
        }

    let step (c: Config) (p: Params) (s: State) (input: Tensor) : State * Tensor =
        let q = p.Lif
        let a, b = Lif.decays c q s.V
        let vLeak, vReset = like s.V q.VLeak, like s.V q.VReset
        let integrated = s.V + (vLeak - s.V + s.I) * a

        let v =
            if c.RefractorySteps = 0 then
                integrated
            else
                Tensor.Where(s.Refractory.Gt 0.0, s.V, integrated)

        let i = s.I * b + input
        let threshold = s.A * like s.V p.Beta + like s.V q.VTh

        let z, counter =
            refractorySpike c.Surrogate c.RefractorySteps s.Refractory (v - threshold)

        let adapt = 1.0 - c.Dt / effectiveTau c.Dt (like s.V p.TauAdapt)
        let zs = Ad.stopGradient z

        let v' =
            match c.Reset with
            | ToValue -> v * (1.0 - zs) + zs * vReset
            | BySubtraction -> v - zs * (threshold - vReset)

        {
            V = v'
            I = i
            A = s.A * adapt + z
            Refractory = counter
        },
        z

    /// `step` of a spec (constant parameters in the state's dtype).
    let stepOf (p: Spec) : State -> Tensor -> State * Tensor =
        let c = config (validate p)
        fun s x -> step c (paramsAs s.V.DType p) s x

/// Adaptive exponential integrate-and-fire (Brette & Gerstner 2005), the neuron BrainScaleS-2
/// implements: exponential spike initiation, an adaptation current W with subthreshold coupling A
/// and spike-triggered increment B, an exponential synapse, and a refractory period.
///   tauMem dv/dt = (vLeak - v) + DeltaT exp((v - VT)/DeltaT) - w + i
///   tauAdapt dw/dt = A (v - vLeak) - w;   on a spike: v <- VReset, w <- w + B, clamp for TRef.
module AdEx =
    type Spec =
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

    type Config = { Dt: float; Surrogate: SurrogateFn }

    /// Per-neuron tensors (the chip's circuits differ neuron by neuron in all of them).
    type Params =
        {
            TauSyn: Tensor
            TauMem: Tensor
            TauAdapt: Tensor
            VLeak: Tensor
            VT: Tensor
            DeltaT: Tensor
            VTh: Tensor
            VReset: Tensor
            A: Tensor
            B: Tensor
            TRef: Tensor
        }

    type State =
        {
            V: Tensor
            I: Tensor
            W: Tensor
            /// Remaining refractory time in seconds (0 when not refractory).
            Refractory: Tensor
        }

    let validate (p: Spec) =
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
    let defaults: Spec =
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

    let config (p: Spec) : Config = { Dt = p.Dt; Surrogate = p.Surrogate }

    let paramsAs (dtype: DType) (p: Spec) : Params =
        let s = scalar dtype

        {
            TauSyn = s p.TauSyn
            TauMem = s p.TauMem
            TauAdapt = s p.TauAdapt
            VLeak = s p.VLeak
            VT = s p.VT
            DeltaT = s p.DeltaT
            VTh = s p.VTh
            VReset = s p.VReset
            A = s p.A
            B = s p.B
            TRef = s p.TRef
        }

    let paramsOf (p: Spec) = paramsAs Float32 p

    let validateParams (c: Config) (p: Params) =
        checkDt "AdEx" c.Dt
        checkTauTensor "AdEx" "TauSyn" c.Dt p.TauSyn
        checkTauTensor "AdEx" "TauMem" c.Dt p.TauMem
        checkTauTensor "AdEx" "TauAdapt" c.Dt p.TauAdapt
        checkEach "AdEx" "DeltaT" p.DeltaT (fun v -> isFinite v && v > 0.0) "must be finite and positive"
        checkEach "AdEx" "TRef" p.TRef (fun v -> isFinite v && v >= 0.0) "must be finite and non-negative"

        for name, t in
            [
                "VLeak", p.VLeak
                "VT", p.VT
                "VTh", p.VTh
                "VReset", p.VReset
                "A", p.A
                "B", p.B
            ] do
            checkEach "AdEx" name t isFinite "must be finite"

        checkThresholdTensors "AdEx" p.VTh p.VReset
        p

    let init (shape: int[]) (dtype: DType) =
        let zeros () = Tensor.Full(shape, 0.0, dtype)

        {
            V = zeros ()
            I = zeros ()
            W = zeros ()
            Refractory = zeros ()
        }

    let step (c: Config) (p: Params) (s: State) (input: Tensor) : State * Tensor =
        let q = like s.V
        let deltaT = q p.DeltaT
        // The exponent is capped so a runaway upswing gives a large finite value, not inf/NaN.
        let exponential =
            ((s.V - q p.VT) / deltaT).Minimum(Tensor.Scalar(20.0, s.V.DType)).Exp() * deltaT

        let dv =
            (q p.VLeak - s.V + exponential - s.W + s.I)
            * (c.Dt / effectiveTau c.Dt (q p.TauMem))

        let active = s.Refractory.Le 0.0 |> Ad.stopGradient
        let v = s.V + dv * active

        let w =
            s.W
            + ((s.V - q p.VLeak) * q p.A - s.W) * (c.Dt / effectiveTau c.Dt (q p.TauAdapt))

        let i = s.I * (1.0 - c.Dt / effectiveTau c.Dt (q p.TauSyn)) + input
        let z = spike c.Surrogate (v - q p.VTh)
        let zs = Ad.stopGradient z

        {
            V = v * (1.0 - zs) + zs * q p.VReset
            I = i
            W = w + zs * q p.B
            Refractory = (s.Refractory - c.Dt).Relu() + zs * q p.TRef
        },
        z

    /// `step` of a spec (constant parameters in the state's dtype).
    let stepOf (p: Spec) : State -> Tensor -> State * Tensor =
        let c = config (validate p)
        fun s x -> step c (paramsAs s.V.DType p) s x

/// Non-leaky integrate-and-fire: v <- v + input, spike and reset.
module IF =
    type Spec =
        {
            VTh: float
            VReset: float
            Reset: Reset
            Surrogate: SurrogateFn
            RefractorySteps: int
        }

    type Config =
        {
            Reset: Reset
            Surrogate: SurrogateFn
            RefractorySteps: int
        }

    type Params = { VTh: Tensor; VReset: Tensor }

    type State = { V: Tensor; Refractory: Tensor }

    let validate (p: Spec) =
        checkFinite "IF" "VTh" p.VTh
        checkFinite "IF" "VReset" p.VReset
        checkThreshold "IF" p.VTh p.VReset
        checkRefractory "IF" p.RefractorySteps
        p

    let defaults: Spec =
        {
            VTh = 1.0
            VReset = 0.0
            Reset = ToValue
            Surrogate = Surrogate.superSpike 100.0
            RefractorySteps = 0
        }

    let config (p: Spec) : Config =
        {
            Reset = p.Reset
            Surrogate = p.Surrogate
            RefractorySteps = p.RefractorySteps
        }

    let paramsAs (dtype: DType) (p: Spec) : Params =
        {
            VTh = scalar dtype p.VTh
            VReset = scalar dtype p.VReset
        }

    let paramsOf (p: Spec) = paramsAs Float32 p

    let validateParams (c: Config) (p: Params) =
        checkRefractory "IF" c.RefractorySteps
        checkEach "IF" "VTh" p.VTh isFinite "must be finite"
        checkEach "IF" "VReset" p.VReset isFinite "must be finite"
        checkThresholdTensors "IF" p.VTh p.VReset
        p

    let init (shape: int[]) (dtype: DType) =
        {
            V = Tensor.Full(shape, 0.0, dtype)
            Refractory = Tensor.Full(shape, 0.0, dtype)
        }

    let step (c: Config) (p: Params) (s: State) (input: Tensor) : State * Tensor =
        let vTh, vReset = like s.V p.VTh, like s.V p.VReset

        let v =
            if c.RefractorySteps = 0 then
                s.V + input
            else
                Tensor.Where(s.Refractory.Gt 0.0, s.V, s.V + input)

        let z, counter =
            refractorySpike c.Surrogate c.RefractorySteps s.Refractory (v - vTh)

        {
            V = resetMembrane c.Reset vTh vReset v z
            Refractory = counter
        },
        z

    /// `step` of a spec (constant parameters in the state's dtype).
    let stepOf (p: Spec) : State -> Tensor -> State * Tensor =
        let c = config (validate p)
        fun s x -> step c (paramsAs s.V.DType p) s x
