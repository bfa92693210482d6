/// Optimizers in optax's shape: a gradient transformation is a pure `init` (state from parameters)
/// and `update` (updates and new state from gradients, state and parameters), composed with `chain`,
/// and applied to a subset of the parameters with `masked` and `multiTransform`. They work on the
/// flattened leaves of any parameter pytree, together with the leaves' key paths (which is how a
/// mask or a label function reaches init and update).
namespace SnnFunc

open System

/// One tensor per parameter leaf (Adam's moments, momentum's velocity). In key paths each tensor is
/// named by its parameter's path, so a checkpoint calls Adam's first moment of the parameter
/// `hidden/TauMem` `opt/0/Mu/hidden/TauMem`.
[<Sealed>]
type PerLeaf(paths: KeyPath[], values: Tensor[]) =
    do
        if paths.Length <> values.Length then
            invalidArg "values" $"PerLeaf: %d{values.Length} tensors for %d{paths.Length} parameter paths"

    /// The key paths of the parameter leaves.
    member _.Paths = paths

    /// The tensors, one per parameter leaf.
    member _.Values = values

    /// The same parameter paths with other tensors.
    member _.With(newValues: Tensor[]) = PerLeaf(paths, newValues)

    /// Zeros like each parameter.
    static member ZerosLike(paths: KeyPath[], parameters: Tensor[]) =
        PerLeaf(paths, Array.map Tensor.ZerosLike parameters)

    override _.ToString() = $"PerLeaf(%d{values.Length} tensors)"

    interface IKeyedTree with
        member _.Children = Array.map box values

        member _.Rebuild children =
            PerLeaf(paths, children |> Array.map unbox<Tensor>)

        member _.ChildKeys = paths

/// The state of a transformation that keeps none.
type EmptyState = | EmptyState

/// The state of `scaleBySchedule`: the step count.
type ScheduleState = { Count: Tensor }

/// The state of `scaleByAdam`: the first and second moment estimates and the step count.
type AdamState =
    {
        Mu: PerLeaf
        Nu: PerLeaf
        Count: Tensor
    }

/// The state of `traceMomentum`: the velocity.
type MomentumState = { Velocity: PerLeaf }

/// Optimizer state: one value per transformation of a chain (`AdamState`, `ScheduleState`,
/// `EmptyState` ...; `multiTransform`'s is a Map from label to its transformation's state), as a
/// whole a pytree of tensors: save it with the parameters. Step counts are rank-0 Float64 tensors,
/// never read back as numbers, so that updates stay traceable (under Ad.vmap each model of an
/// ensemble has its own state). The tensors appear in the same order as in the positional
/// `Tensor[] list` state of earlier versions, so that their checkpoints still load.
type OptState = obj list

/// A learning rate as a function of the step count (0-based). Both are rank-0 Float64 tensors, so
/// that a schedule is traceable: under `Ad.vmap` (an ensemble of models, each with its own count)
/// the count is a batched tensor and the schedule computes with it like any other tensor code.
type Schedule = Tensor -> Tensor

/// A gradient transformation on parameter leaves.
type GradientTransformation =
    {
        /// Number of state parts (1 for a basic transformation, the sum of its children's for a chain).
        Parts: int
        /// `Init paths parameters`: the state for parameter leaves with these key paths.
        Init: KeyPath[] -> Tensor[] -> OptState
        /// `Update paths gradients state parameters`: the updates and the new state.
        Update: KeyPath[] -> Tensor[] -> OptState -> Tensor[] -> Tensor[] * OptState
    }

[<RequireQualifiedAccess>]
module Optim =

    /// The state of a basic transformation (one part, of type 'S).
    let private one<'S> (name: string) (state: OptState) : 'S =
        match state with
        | [ :? 'S as s ] -> s
        | [ s ] ->
            let actual = if isNull s then "null" else s.GetType().Name
            invalidArg "state" $"Optim.%s{name}: state is a %s{actual}, expected a %s{typeof<'S>.Name}"
        | _ -> invalidArg "state" $"Optim.%s{name}: state has %d{state.Length} parts, expected 1"

    /// A per-leaf state that matches the gradients in number.
    let private matching (name: string) (what: string) (s: PerLeaf) (g: Tensor[]) =
        if s.Values.Length <> g.Length then
            invalidArg
                "state"
                $"Optim.%s{name}: the state holds %s{what} for %d{s.Values.Length} leaves but %d{g.Length} gradients were given"

    let private noState: OptState = [ box EmptyState ]

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
            Init = fun _ _ -> noState
            Update = fun _ g state _ -> g |> Array.map (fun x -> x * factor), state
        }

    /// Multiplies updates by -schedule(step).
    let scaleBySchedule (schedule: Schedule) : GradientTransformation =
        {
            Parts = 1
            Init = fun _ _ -> [ box { Count = zeroCount () } ]
            Update =
                fun _ g state _ ->
                    let s: ScheduleState = one "scaleBySchedule" state
                    let lr = schedule s.Count
                    g |> Array.map (scaleBy -lr), [ box { Count = s.Count + 1.0 } ]
        }

    /// Rescales all updates together so their global L2 norm is at most maxNorm.
    let clipByGlobalNorm (maxNorm: float) : GradientTransformation =
        positive "clipByGlobalNorm" "maxNorm" maxNorm

        {
            Parts = 1
            Init = fun _ _ -> noState
            Update =
                fun _ g state _ ->
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
                fun paths ps ->
                    [
                        box
                            {
                                Mu = PerLeaf.ZerosLike(paths, ps)
                                Nu = PerLeaf.ZerosLike(paths, ps)
                                Count = zeroCount ()
                            }
                    ]
            Update =
                fun _ g state _ ->
                    let s: AdamState = one "adam" state
                    matching "adam" "moments" s.Mu g
                    let n = g.Length
                    let t = s.Count + 1.0
                    // Bias corrections, in Float64 like the count, then rounded to the moments' dtype.
                    let c1 = 1.0 - (float64 b1).Pow t
                    let c2 = 1.0 - (float64 b2).Pow t
                    let like (x: Tensor) (c: Tensor) = c.Convert x.DType

                    let equations i =
                        let m = s.Mu.Values[i] * b1 + g[i] * (1.0 - b1)
                        let v = s.Nu.Values[i] * b2 + g[i].Square() * (1.0 - b2)
                        m, v, (m / like m c1) / ((v / like v c2).Sqrt() + eps)

                    // Concrete leaves take one pass of the same operations (AdamKernels: no
                    // intermediate tensors, whose fresh pages cost more than the arithmetic); traced
                    // ones (vmap over optimizers, ensembles) the equations above.
                    let leaf =
                        if t.IsConcrete then
                            let c1, c2 = c1.ToScalar(), c2.ToScalar()

                            fun i ->
                                let mu, nu, gi = s.Mu.Values[i], s.Nu.Values[i], g[i]

                                if not (mu.IsConcrete && nu.IsConcrete && gi.IsConcrete) then
                                    equations i
                                else
                                    let shape = gi.Shape

                                    // The kernel's three outputs as tensors of the leaf's shape.
                                    let inline fused (n: int) (wrap: ^T[] -> Storage) (step: ^T[] * ^T[] * ^T[] -> unit) =
                                        let m, v, u =
                                            GC.AllocateUninitializedArray< ^T> n,
                                            GC.AllocateUninitializedArray< ^T> n,
                                            GC.AllocateUninitializedArray< ^T> n

                                        step (m, v, u)

                                        Tensor.FromStorage(shape, wrap m),
                                        Tensor.FromStorage(shape, wrap v),
                                        Tensor.FromStorage(shape, wrap u)

                                    match mu.Storage, nu.Storage, gi.Storage with
                                    | Storage.F32 a, Storage.F32 b, Storage.F32 c when a.Length = c.Length && b.Length = c.Length ->
                                        fused c.Length Storage.F32 (fun (m, v, u) ->
                                            Kernels.AdamKernels.Step(a, b, c, b1, b2, c1, c2, eps, m, v, u))
                                    | Storage.F64 a, Storage.F64 b, Storage.F64 c when a.Length = c.Length && b.Length = c.Length ->
                                        fused c.Length Storage.F64 (fun (m, v, u) ->
                                            Kernels.AdamKernels.Step(a, b, c, b1, b2, c1, c2, eps, m, v, u))
                                    | _ -> equations i
                        else
                            equations

                    let steps = Array.init n leaf
                    let m = steps |> Array.map (fun (m, _, _) -> m)
                    let v = steps |> Array.map (fun (_, v, _) -> v)
                    let updates = steps |> Array.map (fun (_, _, u) -> u)

                    updates,
                    [
                        box
                            {
                                Mu = s.Mu.With m
                                Nu = s.Nu.With v
                                Count = t
                            }
                    ]
        }

    /// Momentum (heavy ball, or Nesterov): velocity = beta · velocity + g.
    let traceMomentum (beta: float) (nesterov: bool) : GradientTransformation =
        unitInterval "momentum" "beta" beta

        {
            Parts = 1
            Init =
                fun paths ps ->
                    [
                        box
                            {
                                Velocity = PerLeaf.ZerosLike(paths, ps)
                            }
                    ]
            Update =
                fun _ g state _ ->
                    let s: MomentumState = one "momentum" state
                    matching "momentum" "velocities" s.Velocity g

                    let v =
                        Array.map2 (fun (vel: Tensor) (gi: Tensor) -> vel * beta + gi) s.Velocity.Values g

                    let updates =
                        if nesterov then
                            Array.map2 (fun (vi: Tensor) gi -> vi * beta + gi) v g
                        else
                            v

                    updates, [ box { Velocity = s.Velocity.With v } ]
        }

    /// Adds weight decay · parameters to the updates (decoupled weight decay when placed before the
    /// learning-rate scaling, as in AdamW).
    let addDecayedWeights (decay: float) : GradientTransformation =
        {
            Parts = 1
            Init = fun _ _ -> noState
            Update = fun _ g state ps -> Array.map2 (fun (gi: Tensor) (p: Tensor) -> gi + p * decay) g ps, state
        }

    /// Applies transformations in order; the state is the concatenation of theirs.
    let chain (transforms: GradientTransformation list) : GradientTransformation =
        {
            Parts = transforms |> List.sumBy (fun t -> t.Parts)
            Init = fun paths ps -> transforms |> List.collect (fun t -> t.Init paths ps)
            Update =
                fun paths g state ps ->
                    let parts = transforms |> List.map (fun t -> t.Parts)

                    if List.sum parts <> state.Length then
                        invalidArg "state" $"Optim.chain: state has %d{state.Length} parts, expected %d{List.sum parts}"

                    let mutable rest = state

                    let updates, states =
                        ((g, []), List.zip transforms parts)
                        ||> List.fold (fun (u, acc) (t, k) ->
                            let mine = List.take k rest
                            rest <- List.skip k rest
                            let u', s' = t.Update paths u mine ps
                            u', acc @ s')

                    updates, states
        }

    // Per-leaf transformations ----------------------------------------------------------------------

    /// Replaces updates by zeros (freezes the parameters they belong to, whatever the gradient, NaN
    /// included). Freeze a subset with `masked` or `multiTransform`, e.g.
    /// `chain [ masked frozen setToZero; masked (frozen >> not) (adam 1e-3) ]`.
    let setToZero: GradientTransformation =
        {
            Parts = 1
            Init = fun _ _ -> noState
            Update = fun _ g state _ -> Array.map Tensor.ZerosLike g, state
        }

    /// The elements of xs at the given positions.
    let private pick (positions: int[]) (xs: 'a[]) = positions |> Array.map (fun i -> xs[i])

    /// xs with the elements at the given positions replaced by `values`, in order.
    let private scatter (positions: int[]) (values: Tensor[]) (xs: Tensor[]) =
        let out = Array.copy xs
        positions |> Array.iteri (fun k i -> out[i] <- values[k])
        out

    /// Applies `inner` to the leaves whose key path `mask` selects (optax's masked): they get inner's
    /// updates, the others keep their incoming updates unchanged. The state is inner's, over the
    /// selected leaves only (an Adam inside keeps moments for them alone, named by their paths).
    let masked (mask: KeyPath -> bool) (inner: GradientTransformation) : GradientTransformation =
        let selected (paths: KeyPath[]) =
            Array.init paths.Length id |> Array.filter (fun i -> mask paths[i])

        {
            Parts = inner.Parts
            Init =
                fun paths ps ->
                    let s = selected paths
                    inner.Init (pick s paths) (pick s ps)
            Update =
                fun paths g state ps ->
                    let s = selected paths
                    let u, state' = inner.Update (pick s paths) (pick s g) state (pick s ps)
                    scatter s u g, state'
        }

    /// Gives each leaf the transformation of its label (optax's multi_transform): `labels path`
    /// names one of `transforms`, e.g. a learning rate of its own for the time constants. A label
    /// without a transformation is an ArgumentException naming the leaf and the label. The state is a
    /// Map from label to that transformation's state over its leaves (every label of `transforms` has
    /// one, if no leaf carries it over none).
    let multiTransform (labels: KeyPath -> string) (transforms: Map<string, GradientTransformation>) : GradientTransformation =
        /// The positions of the leaves of each label.
        let groups (paths: KeyPath[]) =
            let ls = paths |> Array.map labels

            ls
            |> Array.iteri (fun i l ->
                if isNull l || not (transforms.ContainsKey l) then
                    let known = transforms.Keys |> Seq.map (sprintf "'%s'") |> String.concat ", "

                    invalidArg
                        "labels"
                        $"Optim.multiTransform: the leaf '%s{KeyPath.toName paths[i]}' has the label '%s{l}', which has no transformation (labels with one: %s{known})")

            transforms
            |> Map.map (fun label _ -> Array.init ls.Length id |> Array.filter (fun i -> ls[i] = label))

        {
            Parts = 1
            Init =
                fun paths ps ->
                    let at = groups paths

                    [
                        box (
                            transforms
                            |> Map.map (fun label tx -> tx.Init (pick at[label] paths) (pick at[label] ps))
                        )
                    ]
            Update =
                fun paths g state ps ->
                    let states: Map<string, OptState> = one "multiTransform" state
                    let at = groups paths
                    let mutable updates = g

                    let states' =
                        transforms
                        |> Map.map (fun label tx ->
                            let s = at[label]

                            match states.TryFind label with
                            | None -> invalidArg "state" $"Optim.multiTransform: the state has no entry for the label '%s{label}'"
                            | Some inner ->
                                let u, inner' = tx.Update (pick s paths) (pick s g) inner (pick s ps)
                                updates <- scatter s u updates
                                inner')

                    updates, [ box states' ]
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
    let init (tx: GradientTransformation) (parameters: 'P) : OptState =
        let paths, ps, _ = Tree.flattenWithPathUnchecked parameters
        tx.Init paths ps

    /// Updates (same structure as the parameters) and the new state.
    let update (tx: GradientTransformation) (grads: 'P) (state: OptState) (parameters: 'P) : 'P * OptState =
        let paths, g, def = Tree.flattenWithPathUnchecked grads
        let ps, pdef = Tree.flatten parameters

        if def <> pdef then
            invalidArg "grads" $"Optim.update: gradients have structure %O{def} but parameters %O{pdef}"

        let u, s = tx.Update paths g state ps
        Tree.unflatten def u, s

    /// Parameters plus updates, leaf by leaf.
    let applyUpdates (parameters: 'P) (updates: 'P) : 'P = Tree.map2 (+) parameters updates

    /// The exponential moving average of the parameters (Polyak averaging), leaf by leaf:
    /// decay · average + (1 − decay) · parameters. Evaluated in place of the last iterate, the
    /// average over the last ~1/(1 − decay) steps smooths out the noise of the final updates.
    let movingAverage (decay: float) (average: 'P) (parameters: 'P) : 'P =
        unitInterval "movingAverage" "decay" decay
        Tree.map2 (fun (a: Tensor) (p: Tensor) -> a * decay + p * (1.0 - decay)) average parameters
