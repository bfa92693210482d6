/// The transformations: jvp, vjp, grad, linearize, Jacobians, Hessians, vmap, scan, custom rules and
/// checkpointing, over pytrees of tensors.
namespace SnnFunc

open System
open SnnFunc.AdCore

/// Options of Ad.scanWith.
type ScanOptions =
    {
        /// Run the steps from the last to the first (outputs still stacked in index order).
        Reverse: bool
        /// When k > 0, store the carry only every k steps and recompute each segment in the backward
        /// pass: memory O(T/k + k) instead of O(T).
        CheckpointEvery: int
        /// Number of steps when xs has no tensor leaves (otherwise taken from axis 0 of xs).
        Length: int option
    }

    static member Default =
        {
            Reverse = false
            CheckpointEvery = 0
            Length = None
        }

/// Automatic differentiation and batching transforms (JAX's, on .NET).
[<RequireQualifiedAccess>]
module Ad =

    let private fmt = Shape.format

    let private checkSameTypes (op: string) (what: string) (expected: Tensor[]) (actual: Tensor[]) =
        for i in 0 .. expected.Length - 1 do
            if
                expected[i].ShapeRef <> actual[i].ShapeRef
                || expected[i].DType <> actual[i].DType
            then
                invalidArg
                    what
                    $"%s{op}: %s{what} leaf %d{i} has shape %s{fmt actual[i].ShapeRef} (%s{actual[i].DType.Name}) but %s{fmt expected[i].ShapeRef} (%s{expected[i].DType.Name}) was expected"

    let private checkSameTree (op: string) (what: string) (expected: TreeDef) (actual: TreeDef) =
        if expected <> actual then
            invalidArg what $"%s{op}: %s{what} has structure %O{actual} but %O{expected} was expected"

    let private zerosIfNull (like: Tensor[]) (values: Tensor[]) =
        Array.map2 (fun (l: Tensor) (v: Tensor) -> if isNull v then Tensor.ZerosLike l else v) like values

    /// f on the leaves of its argument (structure `def`); the output structure can be read once it ran.
    let private flatFn (f: 'P -> 'Q) (def: TreeDef) : (Tensor[] -> Tensor[]) * TreeDef ref =
        let outDef = ref Unchecked.defaultof<TreeDef>

        let flat (args: Tensor[]) =
            let leaves, d = Tree.flatten (f (Tree.unflatten def args))
            outDef.Value <- d
            leaves

        flat, outDef

    // -----------------------------------------------------------------------------------------
    // Forward mode

    /// Forward mode: the outputs of f at `primals` and their directional derivative along `tangents`
    /// (a pytree of the same structure and shapes).
    let jvp (f: 'P -> 'Q) (primals: 'P) (tangents: 'P) : 'Q * 'Q =
        let xs, def = Tree.flatten primals
        let ts, tdef = Tree.flatten tangents
        checkSameTree "Ad.jvp" "tangents" def tdef
        checkSameTypes "Ad.jvp" "tangents" xs ts
        let flat, ydef = flatFn f def
        let primalsOut, tangentsOut = Flat.jvp "jvp" flat xs ts
        Tree.unflatten ydef.Value primalsOut, Tree.unflatten ydef.Value tangentsOut

    // -----------------------------------------------------------------------------------------
    // Reverse mode: linearize (jvp with recorded tangents), then transpose

    /// Runs f on x with recorded tangents: the inputs, their structure, the outputs and their
    /// structure, the trace and the input and output variables.
    let private record (name: string) (f: 'P -> 'Q) (x: 'P) =
        let xs, def = Tree.flatten x
        let flat, ydef = flatFn f def
        let primalsOut, lt, inVars, outVars = Flat.record name flat xs
        xs, def, primalsOut, ydef.Value, lt, inVars, outVars

    /// vjp whose traces carry the name of the public transform (for escaped-tracer messages).
    let private vjpNamed (name: string) (f: 'P -> 'Q) (x: 'P) : 'Q * ('Q -> 'P) =
        let xs, def, ys, ydef, lt, inVars, outVars = record name f x

        let pullback (ct: 'Q) : 'P =
            let cts, cdef = Tree.flatten ct
            checkSameTree "Ad.vjp" "cotangent" ydef cdef
            checkSameTypes "Ad.vjp" "cotangent" ys cts

            let outputs =
                [|
                    for i in 0 .. ys.Length - 1 do
                        if outVars[i] >= 0 then
                            outVars[i], cts[i]
                |]

            Tree.unflatten def (zerosIfNull xs (lt.Backward(outputs, inVars)))

        Tree.unflatten ydef ys, pullback

    /// Reverse mode: the outputs of f at x and the pullback mapping output cotangents (same
    /// structure and shapes as the outputs) to input cotangents (same structure as x).
    let vjp (f: 'P -> 'Q) (x: 'P) : 'Q * ('Q -> 'P) = vjpNamed "vjp" f x

    let private checkScalar (op: string) (y: Tensor) =
        if y.Rank <> 0 then
            invalidArg
                "f"
                $"%s{op}: the function must return a scalar (rank-0 tensor) but returned shape %s{fmt y.ShapeRef}; reduce it first (e.g. Tensor.sum or Tensor.mean) or use Ad.vjp"

    /// The value of a scalar function and its gradient (same structure as x).
    let valueAndGrad (f: 'P -> Tensor) (x: 'P) : Tensor * 'P =
        let y, pullback = vjpNamed "valueAndGrad" f x
        checkScalar "Ad.valueAndGrad" y
        y, pullback (Tensor.OnesLike y)

    /// The gradient of a scalar function (same structure as x).
    let grad (f: 'P -> Tensor) (x: 'P) : 'P =
        let y, pullback = vjpNamed "grad" f x
        checkScalar "Ad.grad" y
        pullback (Tensor.OnesLike y)

    /// Like valueAndGrad for a function that also returns auxiliary data (not differentiated).
    let valueAndGradAux (f: 'P -> Tensor * 'A) (x: 'P) : (Tensor * 'A) * 'P =
        let (y, aux), pullback = vjpNamed "valueAndGradAux" f x
        checkScalar "Ad.valueAndGradAux" y
        (y, aux), pullback (Tensor.OnesLike y, Tree.map Tensor.ZerosLike aux)

    /// The outputs of f at x and the linear map v -> J v, evaluated from the recorded tangent
    /// operations without running f again.
    let linearize (f: 'P -> 'Q) (x: 'P) : 'Q * ('P -> 'Q) =
        // The tape is transposed twice: the pullback of the pullback is the pushforward.
        let y, pullback = vjpNamed "linearize" f x
        let ys, ydef = Tree.flatten y

        let pushforward (v: 'P) : 'Q =
            let zeros = Tree.unflatten ydef (ys |> Array.map Tensor.ZerosLike)
            let _, pullbackOfPullback = vjpNamed "linearize" pullback zeros
            pullbackOfPullback v

        y, pushforward

    // -----------------------------------------------------------------------------------------
    // Batching

    /// Maps f over an axis of its inputs: `inAxes` gives, per leaf of x (flatten order), the mapped
    /// axis or None for an unmapped leaf; outputs get the batch at `outAxis`. Runs f once on the
    /// whole batch (each primitive has a batching rule), not once per example.
    let vmapWith (inAxes: int option[]) (outAxis: int) (f: 'P -> 'Q) (x: 'P) : 'Q =
        let xs, def = Tree.flatten x

        if inAxes.Length <> xs.Length then
            invalidArg "inAxes" $"Ad.vmap: %d{inAxes.Length} in-axes given for %d{xs.Length} input leaves"

        let moved =
            Array.map2
                (fun (x: Tensor) axis ->
                    match axis with
                    | None -> None
                    | Some a ->
                        let a = Shape.normAxis "Ad.vmap" x.Rank a

                        Some(
                            if a = 0 then
                                x
                            else
                                x.Permute(Array.append [| a |] (Array.init x.Rank id |> Array.filter ((<>) a)))
                        ))
                xs
                inAxes

        let sizes =
            moved |> Array.choose (Option.map (fun x -> x.ShapeRef[0])) |> Array.distinct

        let batch =
            match sizes with
            | [| b |] -> b
            | [||] -> invalidArg "inAxes" "Ad.vmap: no input leaf is mapped"
            | _ -> invalidArg "x" $"Ad.vmap: mapped axes have different sizes %A{sizes}"

        let trace = BatchTrace batch

        try
            let inputs =
                Array.map2
                    (fun (x: Tensor) m ->
                        match m with
                        | Some v -> trace.Wrap v
                        | None -> x)
                    xs
                    moved

            let ys, ydef = Tree.flatten (f (Tree.unflatten def inputs))

            let outs =
                ys
                |> Array.map (fun y ->
                    let v = trace.Materialise y
                    let a = Shape.normAxis "Ad.vmap" v.Rank outAxis

                    if a = 0 then
                        v
                    else
                        let others = Array.init (v.Rank - 1) (fun i -> i + 1)
                        v.Permute(Array.concat [ others[.. a - 1]; [| 0 |]; others[a..] ]))

            Tree.unflatten ydef outs
        finally
            trace.Close()

    /// Maps f over axis 0 of every leaf of x; outputs are stacked along axis 0.
    let vmap (f: 'P -> 'Q) (x: 'P) : 'Q =
        vmapWith (Array.create (Tree.leaves x).Length (Some 0)) 0 f x

    // -----------------------------------------------------------------------------------------
    // Jacobians and Hessians (Tensor -> Tensor)

    let private basis (x: Tensor) =
        Tensor.Eye(x.Count, x.DType).Reshape(Array.append [| x.Count |] x.ShapeRef)

    /// The Jacobian by forward mode (one batched jvp): shape output shape @ input shape.
    let jacfwd (f: Tensor -> Tensor) (x: Tensor) : Tensor =
        let cols = vmap (fun v -> snd (jvp f x v)) (basis x) // [n; out...]
        let outRank = cols.Rank - 1
        cols.Permute(Array.append (Array.init outRank ((+) 1)) [| 0 |]).Reshape(Array.append cols.ShapeRef[1..] x.ShapeRef)

    /// The Jacobian by reverse mode (one batched vjp): shape output shape @ input shape.
    let jacrev (f: Tensor -> Tensor) (x: Tensor) : Tensor =
        let y, pullback = vjp f x
        let rows = vmap pullback (basis y) // [m; in...]
        rows.Reshape(Array.append y.ShapeRef x.ShapeRef)

    /// The Hessian of a scalar function (forward over reverse): shape input shape @ input shape.
    let hessian (f: Tensor -> Tensor) (x: Tensor) : Tensor = jacfwd (grad f) x

    /// Hessian-vector product (forward over reverse), without forming the Hessian.
    let hvp (f: 'P -> Tensor) (x: 'P) (v: 'P) : 'P = snd (jvp (grad f) x v)

    // -----------------------------------------------------------------------------------------
    // Custom rules

    /// The value unchanged, with a zero derivative.
    let stopGradient (x: Tensor) : Tensor =
        (Tensor.ApplyCustom(StopGradientFn(), x))[0]

    /// f with a user-supplied forward rule `rule x xdot = (f x, tangent)`. Reverse mode works too:
    /// the rule's tangent must be linear in xdot (it is recorded and transposed).
    let customJvp (f: Tensor -> Tensor) (rule: Tensor -> Tensor -> Tensor * Tensor) : Tensor -> Tensor =
        let fn =
            CustomJvpFn(
                "Ad.customJvp",
                (fun a -> [| f a[0] |]),
                fun p t ->
                    let y, dy = rule p[0] t[0]
                    [| y |], [| dy |]
            )

        fun x -> (Tensor.ApplyCustom(fn, x))[0]

    /// Several-argument form of customJvp on arrays of tensors.
    let customJvpN (f: Tensor[] -> Tensor[]) (rule: Tensor[] -> Tensor[] -> Tensor[] * Tensor[]) : Tensor[] -> Tensor[] =
        let fn = CustomJvpFn("Ad.customJvp", f, rule)
        fun xs -> Tensor.ApplyCustom(fn, xs)

    /// f with a user-supplied reverse rule: `fwd x = (f x, residuals)`, `bwd residuals ct = x cotangent`.
    /// Reverse mode only (grad, vjp).
    let customVjp (f: Tensor -> Tensor) (fwd: Tensor -> Tensor * 'R) (bwd: 'R -> Tensor -> Tensor) : Tensor -> Tensor =
        let fn =
            CustomVjpFn(
                "Ad.customVjp",
                (fun a -> [| f a[0] |]),
                (fun a ->
                    let y, r = fwd a[0]
                    [| y |], box r),
                fun r cts -> [| bwd (unbox<'R> r) cts[0] |]
            )

        fun x -> (Tensor.ApplyCustom(fn, x))[0]

    /// f, but reverse mode stores only its inputs and recomputes its inside during the backward pass
    /// (trading compute for memory). f may close over values the enclosing transforms differentiate
    /// (weights captured by a scan step): they are found and receive their derivatives.
    let checkpoint (f: 'P -> 'Q) : 'P -> 'Q =
        fun (x: 'P) ->
            let xs, def = Tree.flatten x
            let flat, outDef = flatFn f def
            let ys = Tensor.ApplyCustom(CheckpointFn("Ad.checkpoint", flat), xs)
            Tree.unflatten outDef.Value ys

    // -----------------------------------------------------------------------------------------
    // scan

    /// Runs `step` over axis 0 of xs, threading a carry: returns the last carry and the per-step
    /// outputs stacked along a new axis 0. carry, xs and outputs are pytrees.
    let scanWith (options: ScanOptions) (step: 'C -> 'X -> 'C * 'Y) (init: 'C) (xs: 'X) : 'C * 'Y =
        let xLeaves, xdef = Tree.flatten xs
        let initLeaves, cdef = Tree.flatten init

        let steps =
            match xLeaves, options.Length with
            | [||], Some n -> n
            | [||], None -> invalidArg "xs" "Ad.scan: xs has no tensor leaves; give the number of steps in ScanOptions.Length"
            | leaves, length ->
                for l in leaves do
                    if l.Rank = 0 then
                        invalidArg "xs" "Ad.scan: every leaf of xs needs a leading (time) axis; found a scalar"

                let n = leaves[0].ShapeRef[0]

                for l in leaves do
                    if l.ShapeRef[0] <> n then
                        invalidArg
                            "xs"
                            $"Ad.scan: leaves of xs disagree on the number of steps: %s{fmt leaves[0].ShapeRef} and %s{fmt l.ShapeRef}"

                match length with
                | Some m when m <> n -> invalidArg "options" $"Ad.scan: Length = %d{m} but xs has %d{n} steps"
                | _ -> n

        if steps < 0 then
            invalidArg "options" $"Ad.scan: negative number of steps %d{steps}"

        if options.CheckpointEvery < 0 then
            invalidArg "options" $"Ad.scan: CheckpointEvery must be >= 0, got %d{options.CheckpointEvery}"

        // Slices of every xs leaf, one per step (recorded as a single linear step in reverse mode).
        let slices =
            xLeaves |> Array.map (fun x -> Tensor.ApplyCustom(UnstackFn(steps, 0), x))

        let xAt t =
            Tree.unflatten<'X> xdef (slices |> Array.map (fun s -> s[t]))

        let checkCarry (t: int) (carry: 'C) =
            let leaves, d = Tree.flatten carry

            if d <> cdef then
                invalidOp $"Ad.scan: step %d{t} returned a carry of structure %O{d}, but the initial carry has %O{cdef}"

            for i in 0 .. leaves.Length - 1 do
                if
                    leaves[i].ShapeRef <> initLeaves[i].ShapeRef
                    || leaves[i].DType <> initLeaves[i].DType
                then
                    invalidOp
                        $"Ad.scan: step %d{t} changed carry leaf %d{i} from %s{fmt initLeaves[i].ShapeRef} (%s{initLeaves[i].DType.Name}) to %s{fmt leaves[i].ShapeRef} (%s{leaves[i].DType.Name})"

        let order =
            if options.Reverse then
                [| steps - 1 .. -1 .. 0 |]
            else
                [| 0 .. steps - 1 |]

        let outputs: Tensor[][] = Array.zeroCreate steps
        let mutable ydef = Unchecked.defaultof<TreeDef>

        /// Runs the steps order[lo .. hi-1] from carry c, the j-th taking input xsAt j; returns the
        /// new carry and each step's output leaves.
        let runSteps (c: 'C) (lo: int) (hi: int) (xsAt: int -> 'X) =
            let mutable carry = c
            let outs = ResizeArray()

            for j in 0 .. hi - lo - 1 do
                let t = order[lo + j]
                let c', y = step carry (xsAt j)
                checkCarry t c'
                let yl, d = Tree.flatten y

                if isNull (box ydef) then
                    ydef <- d
                elif d <> ydef then
                    invalidOp $"Ad.scan: step %d{t} returned outputs of structure %O{d}, but earlier steps returned %O{ydef}"

                outs.Add yl
                carry <- c'

            carry, outs.ToArray()

        let mutable carry = init
        let k = options.CheckpointEvery

        if k = 0 || steps <= k then
            let c, outs = runSteps init 0 steps (fun j -> xAt order[j])
            carry <- c
            outs |> Array.iteri (fun j o -> outputs[order[j]] <- o)
        else
            // Each segment of k steps is checkpointed: reverse mode keeps only its input carry and
            // xs slices, and reruns the segment during the backward pass.
            for lo in 0..k .. steps - 1 do
                let hi = min steps (lo + k)
                let segmentXs = [| for j in lo .. hi - 1 -> xAt order[j] |]
                let segment (c: 'C, sx: 'X[]) = runSteps c lo hi (fun j -> sx[j])
                let c', outs = checkpoint segment (carry, segmentXs)
                carry <- c'
                outs |> Array.iteri (fun j o -> outputs[order[lo + j]] <- o)

        let ys =
            if steps = 0 then
                // No step runs, but the outputs' structure and shapes are the step's: map the step
                // over an empty batch of the (empty) xs, which yields exactly the stacked [0; ...]
                // outputs without computing anything of size.
                let probe (c: 'C, x: 'X, _: Tensor) = snd (step c x)
                let carryAxes = Array.create initLeaves.Length None
                let xsAxes = Array.create xLeaves.Length (Some 0)

                vmapWith (Array.concat [ carryAxes; xsAxes; [| Some 0 |] ]) 0 probe (init, xs, Tensor.Zeros [| 0 |])
            else
                let leafCount = outputs[0].Length

                let stacked =
                    Array.init leafCount (fun i -> Tensor.Stack(outputs |> Array.map (fun o -> o[i]), 0))

                Tree.unflatten<'Y> ydef stacked

        carry, ys

    /// scanWith the default options (forward, no checkpointing).
    let scan (step: 'C -> 'X -> 'C * 'Y) (init: 'C) (xs: 'X) : 'C * 'Y =
        scanWith ScanOptions.Default step init xs
