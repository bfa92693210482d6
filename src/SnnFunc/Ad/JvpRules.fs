/// The forward-mode rule of every primitive: output tangent from input tangents (null = symbolic
/// zero). Rules are written with tensor operations that are linear in the tangents, so the same rule
/// serves reverse mode (the tangent operations are recorded and transposed, see Traces.fs).
module internal SnnFunc.JvpRules

open SnnFunc.Linear

/// Output tangent of a unary primitive, given input x, output y and tangent t (non-null).
let private unary (op: UnaryOp) (x: Tensor) (y: Tensor) (t: Tensor) : Tensor =
    match op with
    | UnaryOp.Neg -> -t
    | UnaryOp.Exp -> t * y
    | UnaryOp.Log -> t / x
    | UnaryOp.Sin -> t * x.Cos()
    | UnaryOp.Cos -> t * x.Sin().Neg()
    | UnaryOp.Tanh -> t * (1.0 - y * y)
    | UnaryOp.Sigmoid -> t * (y * (1.0 - y))
    | UnaryOp.Relu -> t * x.Gt 0.0
    | UnaryOp.Abs -> t * x.Sign()
    | UnaryOp.Sqrt -> t * (0.5 / y)
    | UnaryOp.Log1p -> t / (1.0 + x)
    | UnaryOp.Expm1 -> t * (y + 1.0)
    | UnaryOp.Sign
    | UnaryOp.Floor
    | UnaryOp.Ceil
    | UnaryOp.Round -> null

/// Output tangent of a binary primitive (ta, tb may be null).
let private binary (op: BinaryOp) (a: Tensor) (b: Tensor) (y: Tensor) (ta: Tensor) (tb: Tensor) (shape: int[]) =
    let scaled (t: Tensor) (factor: unit -> Tensor) =
        if isNull t then null else t * factor ()

    let result =
        match op with
        | BinaryOp.Add -> addZ ta tb
        | BinaryOp.Sub -> addZ ta (if isNull tb then null else -tb)
        | BinaryOp.Mul -> addZ (scaled ta (fun () -> b)) (scaled tb (fun () -> a))
        | BinaryOp.Div -> addZ (scaled ta (fun () -> 1.0 / b)) (scaled tb (fun () -> (y / b).Neg()))
        | BinaryOp.FloorDiv -> null // piecewise constant
        | BinaryOp.Rem ->
            // a - b floor(a / b): the floor is piecewise constant.
            addZ ta (if isNull tb then null else -(tb * (a / b).Floor()))
        | BinaryOp.Pow ->
            // d/da a^b = b a^(b-1), taken as 0 where b = 0 (a^0 = 1 everywhere; the formula gives
            // 0 * 0^-1 = NaN at a = 0), as JAX does.
            let da () =
                Tensor.Where(b.Eq 0.0, Tensor.ZerosLike y, b * a.Pow(b - 1.0))

            // d/db a^b = a^b log a; taken as 0 where a = 0 (the limit for b > 0), as JAX does.
            let db () =
                Tensor.Where(a.Eq 0.0, Tensor.ZerosLike y, y * a.Log())

            addZ (scaled ta da) (scaled tb db)
        | BinaryOp.Max
        | BinaryOp.Min ->
            // The winner's tangent; ties split evenly (the mean of the one-sided derivatives).
            let wins = if op = BinaryOp.Max then a.Gt b else a.Lt b
            let loses = if op = BinaryOp.Max then a.Lt b else a.Gt b
            let tie () = a.Eq(b) * 0.5
            addZ (scaled ta (fun () -> wins + tie ())) (scaled tb (fun () -> loses + tie ()))
        | BinaryOp.Eq
        | BinaryOp.Ne
        | BinaryOp.Lt
        | BinaryOp.Le
        | BinaryOp.Gt
        | BinaryOp.Ge -> null

    if isNull result then null else toShape result shape

/// The primal output and output tangent of `prim` (tangent null when it is a symbolic zero).
/// `tangents` has a null entry for every input whose tangent is zero; at least one is non-null.
let apply (prim: Prim) (primals: Tensor[]) (tangents: Tensor[]) : Tensor * Tensor =
    let y = Tensor.Apply(prim, primals)
    let shape = y.ShapeRef

    /// The primitive applied to the first argument's tangent (linear in it; the others constant).
    let linear () =
        Tensor.Apply(prim, Array.append [| tangents[0] |] primals[1..])

    let tangent =
        match prim with
        | _ when not y.DType.IsFloat -> null // integer results are never differentiated
        | Prim.Unary op -> unary op primals[0] y tangents[0]
        | Prim.Binary op -> binary op primals[0] primals[1] y tangents[0] tangents[1] shape
        | Prim.Where ->
            let c = primals[0]
            let zero = Tensor.Scalar(0.0, y.DType)

            match tangents[1], tangents[2] with
            | null, null -> null
            | ta, tb ->
                let ta = if isNull ta then zero else ta
                let tb = if isNull tb then zero else tb
                toShape (Tensor.Where(c, ta, tb)) shape
        | Prim.Reduce(ReduceOp.Sum, _) -> linear ()
        | Prim.Reduce(_, axes) ->
            // The tangent of the extreme element; ties share it evenly.
            let x = primals[0]

            let keep =
                x.ShapeRef |> Array.mapi (fun i d -> if Array.contains i axes then 1 else d)

            let mask = x.Eq(y.Reshape keep)
            let weights = mask / mask.SumAxes(axes, true)
            (tangents[0] * weights).SumAxes axes
        | Prim.ArgMax _
        | Prim.ArgMin _
        | Prim.Argsort _
        | Prim.SearchSorted _ -> null
        | Prim.MatMul(transA, transB) ->
            let a, b = primals[0], primals[1]
            let ta, tb = tangents[0], tangents[1]
            let left = if isNull ta then null else ta.MatMul(b, transA, transB)
            let right = if isNull tb then null else a.MatMul(tb, transA, transB)
            addZ left right
        | Prim.Concat _ ->
            let parts =
                Array.init primals.Length (fun i ->
                    if isNull tangents[i] then
                        zerosOf primals[i].ShapeRef primals[i].DType
                    else
                        tangents[i])

            Tensor.Apply(prim, parts)
        | Prim.Reshape _
        | Prim.BroadcastTo _
        | Prim.Permute _
        | Prim.Slice _
        | Prim.Pad _
        | Prim.Gather _
        | Prim.ScatterAdd _
        | Prim.Cumsum _ -> if isNull tangents[0] then null else linear ()
        | Prim.Convert _ -> linear ()

    y, tangent
