/// What every neuron model shares about its parameters: validation of host numbers and of
/// parameter tensors (naming the neuron), the parameterisation that keeps time constants above Dt,
/// and matching parameter dtypes to the simulated state.
module internal SnnFunc.NeuronParams

open System

let check (model: string) (name: string) (ok: bool) (detail: string) =
    if not ok then
        invalidArg name $"%s{model}: %s{detail}"

/// Every parameter is checked for NaN and ±inf first: the range checks below are comparisons,
/// which NaN passes silently, and an infinite reset or leak turns membranes into NaN (or, in the
/// fused kernels, into a different finite value).
let checkFinite (model: string) (name: string) (value: float) =
    check model name (not (Double.IsNaN value || Double.IsInfinity value)) $"%s{name} must be finite, got %g{value}"

let checkTau (model: string) (name: string) (tau: float) (dt: float) =
    check model name (tau > 0.0 && not (Double.IsInfinity tau)) $"%s{name} must be positive and finite, got %g{tau}"
    check model name (dt < tau) $"Dt = %g{dt} s must be smaller than %s{name} = %g{tau} s (the Euler step would be unstable)"

let checkDt (model: string) (dt: float) =
    check model "Dt" (dt > 0.0 && not (Double.IsInfinity dt)) $"Dt must be positive and finite, got %g{dt}"

let checkThreshold (model: string) (vTh: float) (vReset: float) =
    check model "VTh" (vTh > vReset) $"the threshold VTh = %g{vTh} must lie above the reset VReset = %g{vReset}"

let checkRefractory (model: string) (steps: int) =
    check model "RefractorySteps" (steps >= 0) $"RefractorySteps must be non-negative, got %d{steps}"

/// Checks every element of a concrete parameter tensor; the error names the model, the parameter,
/// the neuron (flat index into the neuron shape) and the value. Traced tensors (parameters under a
/// transform) are not read: they were checked when they were made.
let checkEach (model: string) (name: string) (t: Tensor) (ok: float -> bool) (requirement: string) =
    if isNull t then
        invalidArg name $"%s{model}: %s{name} is null"

    if not t.DType.IsFloat then
        invalidArg name $"%s{model}: %s{name} must be a float32 or float64 tensor, got %s{t.DType.Name}"

    if t.IsConcrete then
        let values = t.ToDoubleArray()

        match Array.tryFindIndex (ok >> not) values with
        | Some i ->
            let at = if t.Rank = 0 then "" else $" of neuron %d{i}"
            invalidArg name $"%s{model}: %s{name}%s{at} is %.17g{values[i]}; it %s{requirement}"
        | None -> ()

let isFinite (v: float) =
    not (Double.IsNaN v || Double.IsInfinity v)

/// What a kernel checks on every call: finite values only. (The physical ranges are checked where
/// parameters are made; learned values may leave them — a time constant below Dt is what the
/// barrier below is for.)
let checkAllFinite (op: string) (named: (string * Tensor) list) =
    for name, t in named do
        checkEach op name t isFinite "must be finite"

/// Time constants must be finite and above Dt (the Euler step is unstable below).
let checkTauTensor (model: string) (name: string) (dt: float) (tau: Tensor) =
    checkEach model name tau (fun v -> isFinite v && v > dt) $"must be finite and larger than Dt = %g{dt} s"

/// Threshold above reset, neuron by neuron (both broadcast to a common shape).
let checkThresholdTensors (model: string) (vTh: Tensor) (vReset: Tensor) =
    if vTh.IsConcrete && vReset.IsConcrete then
        let shape = Shape.broadcast $"%s{model} (VTh, VReset)" vTh.ShapeRef vReset.ShapeRef
        let th = vTh.BroadcastTo(shape).ToDoubleArray()
        let rs = vReset.BroadcastTo(shape).ToDoubleArray()

        match Array.tryFindIndex id (Array.map2 (fun a b -> not (a > b)) th rs) with
        | Some i ->
            let at = if shape.Length = 0 then "" else $" of neuron %d{i}"
            invalidArg "VTh" $"%s{model}: the threshold VTh%s{at} = %g{th[i]} must lie above the reset VReset = %g{rs[i]}"
        | None -> ()

/// The time constant the dynamics use: τ itself from 2·Dt up, and below a smooth barrier that
/// approaches Dt (τ_eff = Dt + softplus(k (τ - Dt)) / k, k = 40 / Dt; far below Dt it rounds to Dt
/// itself) — so that a gradient step that pushes a learned τ below Dt leaves the Euler step stable
/// (a = Dt/τ_eff <= 1) instead of exploding. The two branches meet at 2·Dt to within 1e-18
/// relative, in value and slope; above, numbers are exact.
let effectiveTau (dt: float) (tau: Tensor) =
    let k = 40.0 / dt
    let x = (tau - dt) * k
    let softplus = x.Relu() + (-(x.Abs())).Exp().Log1p()
    Tensor.Where(tau.Gt(2.0 * dt), tau, softplus / k + dt)

/// A parameter tensor in the dtype of the state it acts on (parameters may be stored in another
/// precision; the conversion is differentiable).
let like (state: Tensor) (p: Tensor) =
    if p.DType = state.DType then p else p.Convert state.DType

/// A rank-0 tensor of a host parameter value.
let scalar (dtype: DType) (v: float) = Tensor.Scalar(v, dtype)
