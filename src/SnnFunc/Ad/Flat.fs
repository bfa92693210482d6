/// The transforms on flat arrays of tensors (jvp, vjp, the transpose of a linear map) and the
/// resolver scope of closure conversion: what the custom functions' rules need, below the pytree
/// surface of SnnFunc.Ad.
module internal SnnFunc.AdCore.Flat

open System
open SnnFunc

let private zerosIfNull (like: Tensor[]) (values: Tensor[]) =
    Array.map2 (fun (l: Tensor) (v: Tensor) -> if isNull v then Tensor.ZerosLike l else v) like values

/// Forward mode on arrays: outputs of f at xs and their tangents along ts (null = zero tangent).
/// Output tangents are never null (zeros where the outputs do not depend on ts).
let jvp (name: string) (f: Tensor[] -> Tensor[]) (xs: Tensor[]) (ts: Tensor[]) : Tensor[] * Tensor[] =
    let trace = JvpTrace name

    try
        let ys = f (Array.map2 (fun x t -> trace.Wrap(x, t)) xs ts)
        let unwrapped = ys |> Array.map trace.Unwrap
        let primals = Array.map fst unwrapped
        primals, zerosIfNull primals (Array.map snd unwrapped)
    finally
        trace.Close()

/// Runs f on xs with recorded tangents: outputs, the closed trace and the input and output
/// variables (-1 for outputs that do not depend on xs).
let record (name: string) (f: Tensor[] -> Tensor[]) (xs: Tensor[]) =
    let jt = JvpTrace name
    let lt = LinTrace name
    // Integer inputs get no variable: they are never differentiated (their cotangent is zero).
    let inputs =
        xs
        |> Array.map (fun x ->
            if x.DType.IsFloat then
                lt.NewVar(x.ShapeRef, x.DType)
            else
                null)

    try
        let ys = f (Array.map2 (fun x v -> jt.Wrap(x, v)) xs inputs)
        let unwrapped = ys |> Array.map jt.Unwrap
        let primals = Array.map fst unwrapped

        let outVars =
            unwrapped |> Array.map (fun (_, t) -> if isNull t then -1 else lt.VarOf t)

        primals, lt, inputs |> Array.map (fun v -> if isNull v then -1 else lt.VarOf v), outVars
    finally
        jt.Close()
        lt.Close()

/// Reverse mode on arrays: outputs of f at xs and the pullback from output cotangents (null = zero)
/// to input cotangents (never null).
let vjp (name: string) (f: Tensor[] -> Tensor[]) (xs: Tensor[]) : Tensor[] * (Tensor[] -> Tensor[]) =
    let ys, lt, inVars, outVars = record name f xs

    let pullback (cts: Tensor[]) =
        let outputs =
            [|
                for i in 0 .. ys.Length - 1 do
                    if outVars[i] >= 0 && not (isNull cts[i]) then
                        outVars[i], cts[i]
            |]

        zerosIfNull xs (lt.Backward(outputs, inVars))

    ys, pullback

/// The transpose of a linear map given by its action `linear` on arguments shaped like `like`:
/// the pullback of the pullback (the map is recorded once, at zero, and its tape transposed).
let transpose (name: string) (linear: Tensor[] -> Tensor[]) (like: Tensor[]) : Tensor[] -> Tensor[] =
    let zeros = like |> Array.map Tensor.ZerosLike
    let _, pullback = vjp name linear zeros
    pullback

/// Runs body with `resolve` as the resolver of `trace` (see Trace.Resolver); tracers it returns
/// null for go to the resolver that was active before. Restores that resolver afterwards.
let withResolver (trace: Trace) (resolve: Tracer -> Tensor) (body: unit -> 'a) : 'a =
    let previous = trace.Resolver

    let combined =
        Func<Tracer, Tensor>(fun t ->
            match resolve t with
            | null when not (isNull previous) -> previous.Invoke t
            | r -> r)

    trace.Resolver <- combined

    try
        body ()
    finally
        trace.Resolver <- previous
