/// Small helpers the derivative rules share: symbolic-zero arithmetic and undoing broadcasts.
module internal SnnFunc.Linear

/// Sums `ct` over the axes that broadcasting added or stretched, giving a tensor of `shape`
/// (the transpose of broadcasting `shape` to ct's shape).
let unbroadcast (ct: Tensor) (shape: int[]) =
    let ctShape = ct.ShapeRef

    if ctShape = shape then
        ct
    else
        let extra = ctShape.Length - shape.Length

        let axes =
            [|
                for i in 0 .. ctShape.Length - 1 do
                    if i < extra || (shape[i - extra] = 1 && ctShape[i] <> 1) then
                        i
            |]

        let summed = if axes.Length = 0 then ct else ct.SumAxes axes

        if summed.ShapeRef = shape then
            summed
        else
            summed.Reshape shape

/// Broadcasts a tangent to the output shape of the operation it flows through.
let toShape (t: Tensor) (shape: int[]) =
    if t.ShapeRef = shape then t else t.BroadcastTo shape

/// a + b where null stands for a symbolic zero.
let addZ (a: Tensor) (b: Tensor) =
    if isNull a then b
    elif isNull b then a
    else a + b

/// A zero tensor standing in for a symbolic zero where an operation needs a concrete operand.
let zerosOf (shape: int[]) (dtype: DType) = Tensor.Full(shape, 0.0, dtype)
