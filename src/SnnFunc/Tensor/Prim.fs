/// The primitive operations: the small, closed set every tensor computation is built from, and the
/// shape and dtype rule of each (with the validation that names the operation and shapes).
namespace SnnFunc

open System

/// Elementwise functions of one tensor.
[<RequireQualifiedAccess>]
type UnaryOp =
    | Neg
    | Exp
    | Log
    | Sin
    | Cos
    | Tanh
    | Sigmoid
    | Relu
    | Abs
    | Sqrt
    | Sign
    | Floor
    | Ceil
    | Round
    | Log1p
    | Expm1

/// Elementwise functions of two broadcast tensors. Comparisons return 0/1 masks of the same dtype.
[<RequireQualifiedAccess>]
type BinaryOp =
    | Add
    | Sub
    | Mul
    | Div
    /// floor(a / b) (Python's //).
    | FloorDiv
    /// a - b floor(a / b): the remainder with the sign of b (Python's %).
    | Rem
    | Pow
    | Max
    | Min
    | Eq
    | Ne
    | Lt
    | Le
    | Gt
    | Ge

/// Reductions over a set of axes.
[<RequireQualifiedAccess>]
type ReduceOp =
    | Sum
    | Max
    | Min

/// A primitive operation with its static parameters. Arguments are tensors, passed separately.
[<RequireQualifiedAccess>]
type Prim =
    /// f(x), elementwise.
    | Unary of UnaryOp
    /// f(a, b), elementwise with NumPy broadcasting.
    | Binary of BinaryOp
    /// where(cond, a, b): a where cond is non-zero, else b; the three broadcast.
    | Where
    /// Reduction over the given axes (sorted, distinct, non-negative); the axes are removed.
    | Reduce of ReduceOp * axes: int[]
    /// Index (Int32) of the largest element along an axis (first one on ties), removed from the shape.
    | ArgMax of axis: int
    /// Index (Int32) of the smallest element along an axis (first one on ties), removed from the shape.
    | ArgMin of axis: int
    /// Batched matrix product of [..., m, k] and [..., k, n] (either operand read transposed in its
    /// last two axes); batch axes broadcast.
    | MatMul of transA: bool * transB: bool
    /// Same elements, new shape of the same element count.
    | Reshape of shape: int[]
    /// NumPy broadcast to a larger shape.
    | BroadcastTo of shape: int[]
    /// Axis permutation: output axis i is input axis perm[i].
    | Permute of perm: int[]
    /// The box starting at `starts` with extent `sizes`.
    | Slice of starts: int[] * sizes: int[]
    /// Zero padding: `low[i]` elements before and `high[i]` after along axis i.
    | Pad of low: int[] * high: int[]
    /// Joins its arguments along an axis.
    | Concat of axis: int
    /// Picks entries of x along an axis by an Int32 index tensor, per batch element: x is
    /// B @ P @ [n] @ Q with |B| = batchDims leading axes and axis = |B| + |P|; the indices are
    /// B @ J; the result is B @ P @ J @ Q with out[b, p, j, q] = x[b, p, idx[b, j], q].
    /// (numpy.take for batchDims = 0; TensorFlow's gather with batch_dims.) Args: x, indices.
    | Gather of axis: int * batchDims: int
    /// The transpose of Gather: adds updates B @ P @ J @ Q into zeros B @ P @ [size] @ Q at the
    /// indices B @ J (repeated indices accumulate). Args: updates, indices.
    | ScatterAdd of axis: int * batchDims: int * size: int
    /// Running sum along an axis (from the end when `reverse`).
    | Cumsum of axis: int * reverse: bool
    /// The permutation (Int32) that sorts along an axis, stable; NaN sorts last.
    | Argsort of axis: int * descending: bool
    /// For sorted rows [..., n] and values [..., m] with the same leading axes: the Int32 count of
    /// row entries < value (or <= value when `right`), i.e. numpy.searchsorted's side='left'/'right'.
    | SearchSorted of right: bool
    /// Element type conversion.
    | Convert of DType

/// Shape and dtype rules of the primitives.
module Prim =

    /// The name used for a primitive in error messages (string literals: this runs on every call).
    let name (prim: Prim) =
        match prim with
        | Prim.Unary op ->
            (match op with
             | UnaryOp.Neg -> "Tensor.neg"
             | UnaryOp.Exp -> "Tensor.exp"
             | UnaryOp.Log -> "Tensor.log"
             | UnaryOp.Sin -> "Tensor.sin"
             | UnaryOp.Cos -> "Tensor.cos"
             | UnaryOp.Tanh -> "Tensor.tanh"
             | UnaryOp.Sigmoid -> "Tensor.sigmoid"
             | UnaryOp.Relu -> "Tensor.relu"
             | UnaryOp.Abs -> "Tensor.abs"
             | UnaryOp.Sqrt -> "Tensor.sqrt"
             | UnaryOp.Sign -> "Tensor.sign"
             | UnaryOp.Floor -> "Tensor.floor"
             | UnaryOp.Ceil -> "Tensor.ceil"
             | UnaryOp.Round -> "Tensor.round"
             | UnaryOp.Log1p -> "Tensor.log1p"
             | UnaryOp.Expm1 -> "Tensor.expm1")
        | Prim.Binary op ->
            (match op with
             | BinaryOp.Add -> "Tensor.add"
             | BinaryOp.Sub -> "Tensor.sub"
             | BinaryOp.Mul -> "Tensor.mul"
             | BinaryOp.Div -> "Tensor.div"
             | BinaryOp.FloorDiv -> "Tensor.floorDiv"
             | BinaryOp.Rem -> "Tensor.rem"
             | BinaryOp.Pow -> "Tensor.pow"
             | BinaryOp.Max -> "Tensor.maximum"
             | BinaryOp.Min -> "Tensor.minimum"
             | BinaryOp.Eq -> "Tensor.eq"
             | BinaryOp.Ne -> "Tensor.ne"
             | BinaryOp.Lt -> "Tensor.lt"
             | BinaryOp.Le -> "Tensor.le"
             | BinaryOp.Gt -> "Tensor.gt"
             | BinaryOp.Ge -> "Tensor.ge")
        | Prim.Where -> "Tensor.where"
        | Prim.Reduce(ReduceOp.Sum, _) -> "Tensor.sum"
        | Prim.Reduce(ReduceOp.Max, _) -> "Tensor.max"
        | Prim.Reduce(ReduceOp.Min, _) -> "Tensor.min"
        | Prim.ArgMax _ -> "Tensor.argmax"
        | Prim.ArgMin _ -> "Tensor.argmin"
        | Prim.MatMul _ -> "Tensor.matmul"
        | Prim.Reshape _ -> "Tensor.reshape"
        | Prim.BroadcastTo _ -> "Tensor.broadcastTo"
        | Prim.Permute _ -> "Tensor.permute"
        | Prim.Slice _ -> "Tensor.slice"
        | Prim.Pad _ -> "Tensor.pad"
        | Prim.Concat _ -> "Tensor.concat"
        | Prim.Gather _ -> "Tensor.gather"
        | Prim.ScatterAdd _ -> "Tensor.scatterAdd"
        | Prim.Cumsum _ -> "Tensor.cumsum"
        | Prim.Argsort _ -> "Tensor.argsort"
        | Prim.SearchSorted _ -> "Tensor.searchSorted"
        | Prim.Convert _ -> "Tensor.convert"

    let private fmt = Shape.format

    let private removeAxes (shape: int[]) (axes: int[]) =
        shape
        |> Array.indexed
        |> Array.filter (fun (i, _) -> not (Array.contains i axes))
        |> Array.map snd

    let private checkArity op (expected: int) (shapes: int[][]) =
        if shapes.Length <> expected then
            Shape.fail op $"expects %d{expected} argument(s), got %d{shapes.Length}"

    let private checkLength op (what: string) (shape: int[]) (values: int[]) =
        if isNull values then
            Shape.fail op $"%s{what} is null"

        if values.Length <> shape.Length then
            Shape.fail
                op
                $"%s{what} %s{fmt values} has %d{values.Length} entries but the tensor of shape %s{fmt shape} has rank %d{shape.Length}"

    let private checkAxis op (axis: int) (shape: int[]) =
        if axis < 0 || axis >= shape.Length then
            Shape.fail op $"axis %d{axis} is out of range for shape %s{fmt shape}"

    /// Index arguments must be Int32 (so that they are exact and never differentiated).
    let private checkIndexDType op (what: string) (dtype: DType) =
        if dtype <> DType.Int32 then
            Shape.fail op $"%s{what} must be int32, got %s{dtype.Name} (convert with Tensor.convert Int32)"

    let private inferUnchecked (op: string) (prim: Prim) (shapes: int[][]) (dtypes: DType[]) : int[] * DType =

        let sameDTypes (dtypes: DType[]) =
            for d in dtypes do
                if d <> dtypes[0] then
                    let all = String.Join(", ", dtypes |> Array.map (fun d -> d.Name))
                    Shape.fail op $"dtypes differ (%s{all}); convert explicitly with Tensor.convert"

        let sameDType () = sameDTypes dtypes

        let needFloat () =
            if not dtypes[0].IsFloat then
                Shape.fail op $"needs a floating-point tensor, got %s{dtypes[0].Name} (convert with Tensor.convert Float32)"

        match prim with
        | Prim.Unary u ->
            checkArity op 1 shapes

            match u with
            | UnaryOp.Neg
            | UnaryOp.Abs
            | UnaryOp.Sign
            | UnaryOp.Relu -> ()
            | _ -> needFloat ()

            shapes[0], dtypes[0]
        | Prim.Binary b ->
            checkArity op 2 shapes
            sameDType ()

            match b with
            | BinaryOp.Div
            | BinaryOp.Pow -> needFloat ()
            | _ -> ()

            Shape.broadcast op shapes[0] shapes[1], dtypes[0]
        | Prim.Where ->
            checkArity op 3 shapes
            // The condition may have any dtype (non-zero is true); the two branches share theirs.
            sameDTypes dtypes[1..]
            Shape.broadcast op (Shape.broadcast op shapes[0] shapes[1]) shapes[2], dtypes[1]
        | Prim.Reduce(reduce, axes) ->
            checkArity op 1 shapes
            let shape = shapes[0]
            let normalised = Shape.normAxes op shape.Length axes

            if normalised <> axes then
                Shape.fail op $"axes %s{fmt axes} must be sorted, distinct and non-negative"

            if reduce <> ReduceOp.Sum then
                for a in axes do
                    if shape[a] = 0 then
                        Shape.fail op $"cannot reduce the empty axis %d{a} of shape %s{fmt shape}"

            removeAxes shape axes, dtypes[0]
        | Prim.ArgMax axis
        | Prim.ArgMin axis ->
            checkArity op 1 shapes
            let shape = shapes[0]

            if axis < 0 || axis >= shape.Length then
                Shape.fail op $"axis %d{axis} is out of range for shape %s{fmt shape}"

            if shape[axis] = 0 then
                Shape.fail op $"cannot take the arg-extremum of the empty axis %d{axis} of shape %s{fmt shape}"

            removeAxes shape [| axis |], DType.Int32
        | Prim.MatMul(transA, transB) ->
            checkArity op 2 shapes
            sameDType ()
            needFloat ()
            let a, b = shapes[0], shapes[1]

            if a.Length < 2 || b.Length < 2 then
                Shape.fail op $"needs operands of rank >= 2, got %s{fmt a} and %s{fmt b}"

            let m, ka =
                if transA then
                    a[a.Length - 1], a[a.Length - 2]
                else
                    a[a.Length - 2], a[a.Length - 1]

            let kb, n =
                if transB then
                    b[b.Length - 1], b[b.Length - 2]
                else
                    b[b.Length - 2], b[b.Length - 1]

            if ka <> kb then
                let ta = if transA then " (transposed)" else ""
                let tb = if transB then " (transposed)" else ""
                Shape.fail op $"inner dimensions differ: %s{fmt a}%s{ta} has k = %d{ka}, %s{fmt b}%s{tb} has k = %d{kb}"

            let batchA, batchB = a[.. a.Length - 3], b[.. b.Length - 3]

            if not (Seq.forall2 (fun x y -> x = y || x = 1 || y = 1) (Array.rev batchA) (Array.rev batchB)) then
                Shape.fail op $"the batch axes of %s{fmt a} and %s{fmt b} cannot be broadcast together"

            let batch = Shape.broadcast op batchA batchB
            Array.append batch [| m; n |], dtypes[0]
        | Prim.Reshape shape ->
            checkArity op 1 shapes
            let n = Shape.checkedCount op shape

            if n <> Shape.count shapes[0] then
                Shape.fail op $"cannot reshape %s{fmt shapes[0]} (%d{Shape.count shapes[0]} elements) to %s{fmt shape} (%d{n} elements)"

            Array.copy shape, dtypes[0]
        | Prim.BroadcastTo shape ->
            checkArity op 1 shapes
            Shape.checkedCount op shape |> ignore

            if not (Shape.broadcastsTo shapes[0] shape) then
                Shape.fail op $"cannot broadcast %s{fmt shapes[0]} to %s{fmt shape}"

            Array.copy shape, dtypes[0]
        | Prim.Permute perm ->
            checkArity op 1 shapes
            let shape = shapes[0]
            checkLength op "permutation" shape perm

            if Array.sort perm <> Array.init shape.Length id then
                Shape.fail op $"%s{fmt perm} is not a permutation of the axes of %s{fmt shape}"

            Array.map (fun p -> shape[p]) perm, dtypes[0]
        | Prim.Slice(starts, sizes) ->
            checkArity op 1 shapes
            let shape = shapes[0]
            checkLength op "starts" shape starts
            checkLength op "sizes" shape sizes

            for i in 0 .. shape.Length - 1 do
                if starts[i] < 0 || sizes[i] < 0 || starts[i] + sizes[i] > shape[i] then
                    Shape.fail op $"the box starting at %s{fmt starts} with sizes %s{fmt sizes} does not fit in %s{fmt shape} (axis %d{i})"

            Array.copy sizes, dtypes[0]
        | Prim.Pad(low, high) ->
            checkArity op 1 shapes
            let shape = shapes[0]
            checkLength op "low padding" shape low
            checkLength op "high padding" shape high

            if Array.exists (fun p -> p < 0) low || Array.exists (fun p -> p < 0) high then
                Shape.fail op $"padding must be non-negative, got low %s{fmt low} and high %s{fmt high}"

            let result = Array.init shape.Length (fun i -> low[i] + shape[i] + high[i])
            Shape.checkedCount op result |> ignore
            result, dtypes[0]
        | Prim.Concat axis ->
            if shapes.Length = 0 then
                Shape.fail op "needs at least one tensor"

            sameDType ()
            let first = shapes[0]

            if axis < 0 || axis >= first.Length then
                Shape.fail op $"axis %d{axis} is out of range for shape %s{fmt first}"

            for s in shapes do
                let matches =
                    s.Length = first.Length
                    && Array.forall id (Array.init s.Length (fun i -> i = axis || s[i] = first[i]))

                if not matches then
                    Shape.fail op $"shapes %s{fmt first} and %s{fmt s} differ outside axis %d{axis}"

            let result = Array.copy first
            result[axis] <- shapes |> Array.sumBy (fun s -> s[axis])
            Shape.checkedCount op result |> ignore
            result, dtypes[0]
        | Prim.Gather(axis, batchDims) ->
            checkArity op 2 shapes
            checkIndexDType op "indices" dtypes[1]
            let x, idx = shapes[0], shapes[1]
            checkAxis op axis x

            if batchDims < 0 || batchDims > axis || batchDims > idx.Length then
                Shape.fail op $"%d{batchDims} batch axes do not fit before axis %d{axis} of %s{fmt x} and in the indices %s{fmt idx}"

            if x[.. batchDims - 1] <> idx[.. batchDims - 1] then
                Shape.fail op $"the %d{batchDims} leading (batch) axes of %s{fmt x} and of the indices %s{fmt idx} differ"

            Array.concat [ x[.. axis - 1]; idx[batchDims..]; x[axis + 1 ..] ], dtypes[0]
        | Prim.ScatterAdd(axis, batchDims, size) ->
            checkArity op 2 shapes
            checkIndexDType op "indices" dtypes[1]
            let upd, idx = shapes[0], shapes[1]
            let r = idx.Length - batchDims

            if batchDims < 0 || batchDims > axis || r < 0 || axis + r > upd.Length then
                Shape.fail
                    op
                    $"axis %d{axis} with %d{batchDims} batch axes and indices %s{fmt idx} does not fit updates of shape %s{fmt upd}"

            if
                upd[.. batchDims - 1] <> idx[.. batchDims - 1]
                || upd[axis .. axis + r - 1] <> idx[batchDims..]
            then
                Shape.fail
                    op
                    $"updates of shape %s{fmt upd} do not have the index shape %s{fmt idx} (batch axes first, the rest at axis %d{axis})"

            if size < 0 then
                Shape.fail op $"target size %d{size} is negative"

            Array.concat [ upd[.. axis - 1]; [| size |]; upd[axis + r ..] ], dtypes[0]
        | Prim.Cumsum(axis, _) ->
            checkArity op 1 shapes
            checkAxis op axis shapes[0]
            shapes[0], dtypes[0]
        | Prim.Argsort(axis, _) ->
            checkArity op 1 shapes
            checkAxis op axis shapes[0]
            shapes[0], DType.Int32
        | Prim.SearchSorted _ ->
            checkArity op 2 shapes
            sameDType ()
            let sorted, values = shapes[0], shapes[1]

            if
                sorted.Length < 1
                || values.Length <> sorted.Length
                || sorted[.. sorted.Length - 2] <> values[.. values.Length - 2]
            then
                Shape.fail
                    op
                    $"needs sorted rows [..., n] and values [..., m] with the same leading axes, got %s{fmt sorted} and %s{fmt values}"

            values, DType.Int32
        | Prim.Convert dtype ->
            checkArity op 1 shapes
            shapes[0], dtype

    /// The output shape and dtype of a primitive applied to arguments of the given shapes and dtypes.
    /// Raises ArgumentException naming the operation, shapes and offending values on invalid input,
    /// including an output too large for an int count (a broadcast, matmul or gather can produce one
    /// from small arguments).
    let infer (prim: Prim) (shapes: int[][]) (dtypes: DType[]) : int[] * DType =
        let op = name prim
        let shape, dtype = inferUnchecked op prim shapes dtypes
        Shape.checkedCount op shape |> ignore
        shape, dtype
