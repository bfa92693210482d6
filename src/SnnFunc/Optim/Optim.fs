/// Optimizers in optax's shape: a gradient transformation is a pure `init` (state from parameters)
/// and `update` (updates and new state from gradients, state and parameters), composed with `chain`.
/// They work on the flattened leaves of any parameter pytree.
namespace SnnFunc

open System

/// Optimizer state: one array of tensors per transformation of a chain (a pytree: save it with the
/// parameters).
type OptState = Tensor[] list

/// A learning rate as a function of the step count (0-based). Both are rank-0 Float64 tensors, so
/// that a schedule is traceable: under `Ad.vmap` (an ensemble of models, each with its own count)
/// the count is a batched tensor and the schedule computes with it like any other tensor code.
type Schedule = Tensor -> Tensor

/// A gradient transformation on parameter leaves.
type GradientTransformation =
    {
        /// Number of state parts (1 for a basic transformation, the sum of its children's for a chain).
        Parts: int
        Init: Tensor[] -> OptState
        Update: Tensor[] -> OptState -> Tensor[] -> Tensor[] * OptState
    }

[<RequireQualifiedAccess>]
module Optim =

    let private one (name: string) (state: OptState) =
        match state with
        | [ s ] -> s
        | _ -> invalidArg "state" $"Optim.%s{name}: state has %d{state.Length} parts, expected 1"

    let private positive (name: string) (what: string) (v: float) =
        if not (v > 0.0) || Double.IsInfinity v then
            invalidArg what $"Optim.%s{name}: %s{what} must be positive and finite, got %g{v}"

    let private unitInterval (name: string) (what: string) (v: float) =
        if not (v >= 0.0 && v < 1.0) then
            invalidArg what $"Optim.%s{name}: %s{what} must lie in [0, 1), got %g{v}"

    /// The step count kept in a state: a rank-0 Float64 tensor (exact up to 2^53), never read back
    /// as a number, so that updates stay traceable (the state of each model in an Ad.vmap ensemble).
    let private zeroCount () = Tensor.Scalar(0.0, Float64)

    /// `x * factor` for a Float64 scalar tensor factor (a learning rate, a bias correction, a clipping
    /// ratio), rounded to x's dtype first as a float operand would be.
    let private scaleBy (factor: Tensor) (x: Tensor) = x * factor.Convert x.DType

    /// A Float64 constant beside a count (broadcast against it, batched or not).
    let private float64 (v: float) = Tensor.Scalar(v, Float64)

    // Schedules -------------------------------------------------------------------------------------

    /// A constant learning rate.
    let constant (lr: float) : Schedule = fun _ -> float64 lr

    /// lr · rate^(step / transitionSteps), continuously or (staircase) in steps.
    let exponentialDecay (lr: float) (transitionSteps: int) (rate: float) (staircase: bool) : Schedule =
        if transitionSteps <= 0 then
            invalidArg "transitionSteps" $"Optim.exponentialDecay: transitionSteps must be positive, got %d{transitionSteps}"

        fun step ->
            let p = step / float transitionSteps
            (float64 rate).Pow(if staircase then p.Floor() else p) * lr

    /// Cosine decay from lr to alpha · lr over decaySteps, then constant.
    let cosineDecay (lr: float) (decaySteps: int) (alpha: float) : Schedule =
        if decaySteps <= 0 then
            invalidArg "decaySteps" $"Optim.cosineDecay: decaySteps must be positive, got %d{decaySteps}"

        fun step ->
            let p = (step / float decaySteps).Minimum(float64 1.0)
            ((1.0 + (p * Math.PI).Cos()) * ((1.0 - alpha) * 0.5) + alpha) * lr

    /// The learning rate of a schedule at a (concrete) step, as a number: for logs and tests.
    let learningRate (schedule: Schedule) (step: int) : float =
        (schedule (Tensor.Scalar(float step, Float64))).ToScalar()

    // Transformations --------------------------------------------------------------------------------

    /// Multiplies updates by a constant.
    let scale (factor: float) : GradientTransformation =
        {
            Parts = 1
            Init = fun _ -> [ [||] ]
            Update = fun g state _ -> g |> Array.map (fun x -> x * factor), state
        }

    /// Multiplies updates by -schedule(step).
    let scaleBySchedule (schedule: Schedule) : GradientTransformation =
        {
            Parts = 1
            Init = fun _ -> [ [| zeroCount () |] ]
            Update =
                fun g state _ ->
                    let n = (one "scaleBySchedule" state).[0]
                    let lr = schedule n
                    g |> Array.map (scaleBy -lr), [ [| n + 1.0 |] ]
        }

    /// Rescales all updates together so their global L2 norm is at most maxNorm.
    let clipByGlobalNorm (maxNorm: float) : GradientTransformation =
        positive "clipByGlobalNorm" "maxNorm" maxNorm

        {
            Parts = 1
            Init = fun _ -> [ [||] ]
            Update =
                fun g state _ ->
                    // The norm is summed in Float64, as before (when it was read back as a number).
                    let norm =
                        (g
                         |> Array.fold (fun acc x -> acc + x.Square().Sum().Convert Float64) (Tensor.Scalar(0.0, Float64)))
                            .Sqrt()

                    // maxNorm / max(norm, maxNorm): exactly 1 at or under the limit (zero gradients
                    // included), maxNorm / norm above it — one formula for every model of a vmap.
                    let factor = maxNorm / norm.Maximum(float64 maxNorm)
                    g |> Array.map (scaleBy factor), state
        }

    /// Adam's scaling (Kingma & Ba): bias-corrected first/second moment estimates.
    let scaleByAdam (b1: float) (b2: float) (eps: float) : GradientTransformation =
        unitInterval "adam" "b1" b1
        unitInterval "adam" "b2" b2
        positive "adam" "eps" eps

        {
            Parts = 1
            Init =
                fun ps ->
                    [
                        Array.concat
                            [
                                Array.map Tensor.ZerosLike ps
                                Array.map Tensor.ZerosLike ps
                                [| zeroCount () |]
                            ]
                    ]
            Update =
                fun g state _ ->
                    let s = one "adam" state
                    let n = g.Length
                    let t = s[2 * n] + 1.0
                    let m = Array.init n (fun i -> s[i] * b1 + g[i] * (1.0 - b1))
                    let v = Array.init n (fun i -> s[n + i] * b2 + g[i].Square() * (1.0 - b2))
                    // Bias corrections, in Float64 like the count, then rounded to the moments' dtype.
                    let c1 = 1.0 - (float64 b1).Pow t
                    let c2 = 1.0 - (float64 b2).Pow t
                    let like (x: Tensor) (c: Tensor) = c.Convert x.DType

                    let updates =
                        Array.init n (fun i -> (m[i] / like m[i] c1) / ((v[i] / like v[i] c2).Sqrt() + eps))

                    updates, [ Array.concat [ m; v; [| t |] ] ]
        }

    /// Momentum (heavy ball, or Nesterov): velocity = beta · velocity + g.
    let traceMomentum (beta: float) (nesterov: bool) : GradientTransformation =
        unitInterval "momentum" "beta" beta

        {
            Parts = 1
            Init = fun ps -> [ Array.map Tensor.ZerosLike ps ]
            Update =
                fun g state _ ->
                    let v =
                        Array.map2 (fun (vel: Tensor) (gi: Tensor) -> vel * beta + gi) (one "momentum" state) g

                    let updates =
                        if nesterov then
                            Array.map2 (fun (vi: Tensor) gi -> vi * beta + gi) v g
                        else
                            v

                    updates, [ v ]
        }

    /// Adds weight decay · parameters to the updates (decoupled weight decay when placed before the
    /// learning-rate scaling, as in AdamW).
    let addDecayedWeights (decay: float) : GradientTransformation =
        {
            Parts = 1
            Init = fun _ -> [ [||] ]
            Update = fun g state ps -> Array.map2 (fun (gi: Tensor) (p: Tensor) -> gi + p * decay) g ps, state
        }

    /// Applies transformations in order; the state is the concatenation of theirs.
    let chain (transforms: GradientTransformation list) : GradientTransformation =
        {
            Parts = transforms |> List.sumBy (fun t -> t.Parts)
            Init = fun ps -> transforms |> List.collect (fun t -> t.Init ps)
            Update =
                fun g state ps ->
                    let parts = transforms |> List.map (fun t -> t.Parts)

                    if List.sum parts <> state.Length then
                        invalidArg "state" $"Optim.chain: state has %d{state.Length} parts, expected %d{List.sum parts}"

                    let mutable rest = state

                    let updates, states =
                        ((g, []), List.zip transforms parts)
                        ||> List.fold (fun (u, acc) (t, k) ->
                            let mine = List.take k rest
                            rest <- List.skip k rest
                            let u', s' = t.Update u mine ps
                            u', acc @ s')

                    updates, states
        }

    /// Stochastic gradient descent with a learning-rate schedule.
    let sgdWith (schedule: Schedule) : GradientTransformation = scaleBySchedule schedule

    /// Stochastic gradient descent: p <- p - lr · g.
    let sgd (lr: float) : GradientTransformation = sgdWith (constant lr)

    /// SGD with momentum.
    let momentum (lr: float) (beta: float) : GradientTransformation =
        chain [ traceMomentum beta false; sgd lr ]

    /// Adam with a learning-rate schedule.
    let adamWith (schedule: Schedule) (b1: float) (b2: float) (eps: float) : GradientTransformation =
        chain [ scaleByAdam b1 b2 eps; scaleBySchedule schedule ]

    /// Adam with the usual constants (b1 0.9, b2 0.999, eps 1e-8).
    let adam (lr: float) : GradientTransformation = adamWith (constant lr) 0.9 0.999 1e-8

    /// AdamW: Adam with decoupled weight decay.
    let adamw (lr: float) (weightDecay: float) : GradientTransformation =
        chain [ scaleByAdam 0.9 0.999 1e-8; addDecayedWeights weightDecay; sgd lr ]

    // Pytree helpers ---------------------------------------------------------------------------------

    /// The initial state for a parameter pytree.
    let init (tx: GradientTransformation) (parameters: 'P) : OptState = tx.Init(Tree.leaves parameters)

    /// Updates (same structure as the parameters) and the new state.
    let update (tx: GradientTransformation) (grads: 'P) (state: OptState) (parameters: 'P) : 'P * OptState =
        let g, def = Tree.flatten grads
        let ps, pdef = Tree.flatten parameters

        if def <> pdef then
            invalidArg "grads" $"Optim.update: gradients have structure %O{def} but parameters %O{pdef}"

        let u, s = tx.Update g state ps
        Tree.unflatten def u, s

    /// Parameters plus updates, leaf by leaf.
    let applyUpdates (parameters: 'P) (updates: 'P) : 'P = Tree.map2 (+) parameters updates
