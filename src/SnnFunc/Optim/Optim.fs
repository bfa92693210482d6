/// Optimizers in optax's shape: a gradient transformation is a pure `init` (state from parameters)
/// and `update` (updates and new state from gradients, state and parameters), composed with `chain`.
/// They work on the flattened leaves of any parameter pytree.
namespace SnnFunc

open System

/// Optimizer state: one array of tensors per transformation of a chain (a pytree: save it with the
/// parameters).
type OptState = Tensor[] list

/// A learning rate as a function of the step count (0-based).
type Schedule = int -> float

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

    /// The step count kept in a state (a Float64 scalar, exact up to 2^53).
    let private count (t: Tensor) = int (t.ToScalar())
    let private counter (n: int) = Tensor.Scalar(float n, Float64)

    // Schedules -------------------------------------------------------------------------------------

    /// A constant learning rate.
    let constant (lr: float) : Schedule = fun _ -> lr

    /// lr · rate^(step / transitionSteps), continuously or (staircase) in steps.
    let exponentialDecay (lr: float) (transitionSteps: int) (rate: float) (staircase: bool) : Schedule =
        if transitionSteps <= 0 then
            invalidArg "transitionSteps" $"Optim.exponentialDecay: transitionSteps must be positive, got %d{transitionSteps}"

        fun step ->
            let p = float step / float transitionSteps
            lr * Math.Pow(rate, (if staircase then floor p else p))

    /// Cosine decay from lr to alpha · lr over decaySteps, then constant.
    let cosineDecay (lr: float) (decaySteps: int) (alpha: float) : Schedule =
        if decaySteps <= 0 then
            invalidArg "decaySteps" $"Optim.cosineDecay: decaySteps must be positive, got %d{decaySteps}"

        fun step ->
            let p = min 1.0 (float step / float decaySteps)
            lr * ((1.0 - alpha) * 0.5 * (1.0 + cos (Math.PI * p)) + alpha)

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
            Init = fun _ -> [ [| counter 0 |] ]
            Update =
                fun g state _ ->
                    let n = count (one "scaleBySchedule" state).[0]
                    let lr = schedule n
                    g |> Array.map (fun x -> x * -lr), [ [| counter (n + 1) |] ]
        }

    /// Rescales all updates together so their global L2 norm is at most maxNorm.
    let clipByGlobalNorm (maxNorm: float) : GradientTransformation =
        positive "clipByGlobalNorm" "maxNorm" maxNorm

        {
            Parts = 1
            Init = fun _ -> [ [||] ]
            Update =
                fun g state _ ->
                    let norm = sqrt (g |> Array.sumBy (fun x -> x.Square().Sum().ToScalar()))

                    if norm <= maxNorm || norm = 0.0 then
                        g, state
                    else
                        g |> Array.map (fun x -> x * (maxNorm / norm)), state
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
                                [| counter 0 |]
                            ]
                    ]
            Update =
                fun g state _ ->
                    let s = one "adam" state
                    let n = g.Length
                    let t = count s[2 * n] + 1
                    let m = Array.init n (fun i -> s[i] * b1 + g[i] * (1.0 - b1))
                    let v = Array.init n (fun i -> s[n + i] * b2 + g[i].Square() * (1.0 - b2))
                    let c1 = 1.0 - Math.Pow(b1, float t)
                    let c2 = 1.0 - Math.Pow(b2, float t)
                    let updates = Array.init n (fun i -> (m[i] / c1) / ((v[i] / c2).Sqrt() + eps))
                    updates, [ Array.concat [ m; v; [| counter t |] ] ]
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
