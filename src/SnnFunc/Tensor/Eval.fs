/// Concrete evaluation of the primitives on row-major buffers: shape bookkeeping around the kernels.
/// Arguments have been validated by Prim.infer before anything here runs.
module internal SnnFunc.Eval

open System
open System.Numerics
open System.Numerics.Tensors
open SnnFunc.Kernels

/// A buffer the caller fills completely: skips zeroing (large tensors are allocated every operation,
/// and clearing them would cost as much as computing them).
let inline private uninitialized<'T> (n: int) : 'T[] = GC.AllocateUninitializedArray<'T> n

// ---------------------------------------------------------------------------------------------
// Elementwise

let private unaryT<'T when 'T :> IFloatingPointIeee754<'T>> (op: UnaryOp) (x: 'T[]) : 'T[] =
    let y = uninitialized<'T> x.Length
    let xs = ReadOnlySpan<'T>(x)
    let ys = Span<'T>(y)

    // Some TensorPrimitives functions (Sigmoid) reject empty spans: an empty tensor maps to itself.
    if x.Length > 0 then
        match op with
        | UnaryOp.Neg -> TensorPrimitives.Negate<'T>(xs, ys)
        | UnaryOp.Exp -> TensorPrimitives.Exp<'T>(xs, ys)
        | UnaryOp.Log -> TensorPrimitives.Log<'T>(xs, ys)
        // TensorPrimitives' Float64 Sin/Cos compute a vector's lanes with its polynomial or, when
        // one lane is out of its range, all of them with the scalar function: which elements share a
        // vector depends on the output array's alignment, so the same input gave bits that differed
        // by an ulp from call to call. Float64 takes the scalar functions (the same bits always);
        // Float32's vector path is deterministic.
        | UnaryOp.Sin when typeof<'T> = typeof<float> ->
            for i in 0 .. x.Length - 1 do
                y[i] <- 'T.Sin x[i]
        | UnaryOp.Cos when typeof<'T> = typeof<float> ->
            for i in 0 .. x.Length - 1 do
                y[i] <- 'T.Cos x[i]
        | UnaryOp.Sin -> TensorPrimitives.Sin<'T>(xs, ys)
        | UnaryOp.Cos -> TensorPrimitives.Cos<'T>(xs, ys)
        | UnaryOp.Tanh -> TensorPrimitives.Tanh<'T>(xs, ys)
        | UnaryOp.Sigmoid -> TensorPrimitives.Sigmoid<'T>(xs, ys)
        | UnaryOp.Relu -> TensorPrimitives.Max<'T>(xs, 'T.Zero, ys)
        | UnaryOp.Abs -> TensorPrimitives.Abs<'T>(xs, ys)
        | UnaryOp.Sqrt -> TensorPrimitives.Sqrt<'T>(xs, ys)
        | UnaryOp.Floor -> TensorPrimitives.Floor<'T>(xs, ys)
        | UnaryOp.Ceil -> TensorPrimitives.Ceiling<'T>(xs, ys)
        | UnaryOp.Round -> TensorPrimitives.Round<'T>(xs, ys)
        | UnaryOp.Log1p ->
            // TensorPrimitives.LogP1 is log(1 + x), which loses every digit of a tiny x (1 + x rounds
            // to 1). Kahan's correction: with u = 1 + x rounded, log(u) * x / (u - 1) is accurate to
            // a few ulps, because the rounding error of u cancels in the ratio.
            TensorPrimitives.LogP1<'T>(xs, ys)

            for i in 0 .. x.Length - 1 do
                let v = x[i]
                let u = 'T.op_Addition ('T.One, v)

                if 'T.op_Equality (u, 'T.One) then
                    y[i] <- v
                elif 'T.IsFinite u then
                    y[i] <- 'T.op_Multiply (y[i], 'T.op_Division (v, 'T.op_Subtraction (u, 'T.One)))
        | UnaryOp.Expm1 ->
            // TensorPrimitives.ExpM1 is exp(x) - 1, which cancels catastrophically for tiny x.
            // Kahan's correction: with u = exp(x) rounded, (u - 1) / log(u) * x.
            TensorPrimitives.Exp<'T>(xs, ys)
            let logs = uninitialized<'T> x.Length
            TensorPrimitives.Log<'T>(ReadOnlySpan<'T>(y), Span<'T>(logs))

            for i in 0 .. x.Length - 1 do
                let v = x[i]
                let u = y[i]
                let um1 = 'T.op_Subtraction (u, 'T.One)

                y[i] <-
                    if 'T.op_Equality (u, 'T.One) then
                        v
                    elif 'T.op_Equality (um1, 'T.NegativeOne) then
                        'T.NegativeOne
                    elif not ('T.IsFinite u) then
                        u // +inf, or NaN
                    else
                        'T.op_Multiply ('T.op_Division (um1, logs[i]), v) // divide first: (u - 1) * x overflows near the top
        | UnaryOp.Sign ->
            // sign(NaN) = NaN, sign(±0) = 0 (NumPy's convention).
            for i in 0 .. x.Length - 1 do
                let v = x[i]

                y[i] <-
                    if 'T.IsNaN v then v
                    elif 'T.op_GreaterThan (v, 'T.Zero) then 'T.One
                    elif 'T.op_LessThan (v, 'T.Zero) then 'T.NegativeOne
                    else 'T.Zero

    y

let private compareKind (op: BinaryOp) =
    match op with
    | BinaryOp.Eq -> CompareKind.Eq
    | BinaryOp.Ne -> CompareKind.Ne
    | BinaryOp.Lt -> CompareKind.Lt
    | BinaryOp.Le -> CompareKind.Le
    | BinaryOp.Gt -> CompareKind.Gt
    | _ -> CompareKind.Ge

/// One binary kernel call over equal-length runs; a "scalar" operand is a single element applied
/// to every element of the other.
let private binaryRun<'T when 'T :> IFloatingPointIeee754<'T>>
    (op: BinaryOp)
    (a: ReadOnlySpan<'T>)
    (aScalar: bool)
    (b: ReadOnlySpan<'T>)
    (bScalar: bool)
    (dst: Span<'T>)
    =
    match op, aScalar, bScalar with
    | BinaryOp.Add, false, false -> TensorPrimitives.Add<'T>(a, b, dst)
    | BinaryOp.Add, false, true -> TensorPrimitives.Add<'T>(a, b[0], dst)
    | BinaryOp.Add, true, _ -> TensorPrimitives.Add<'T>(b, a[0], dst)
    | BinaryOp.Sub, false, false -> TensorPrimitives.Subtract<'T>(a, b, dst)
    | BinaryOp.Sub, false, true -> TensorPrimitives.Subtract<'T>(a, b[0], dst)
    | BinaryOp.Sub, true, _ -> TensorPrimitives.Subtract<'T>(a[0], b, dst)
    | BinaryOp.Mul, false, false -> TensorPrimitives.Multiply<'T>(a, b, dst)
    | BinaryOp.Mul, false, true -> TensorPrimitives.Multiply<'T>(a, b[0], dst)
    | BinaryOp.Mul, true, _ -> TensorPrimitives.Multiply<'T>(b, a[0], dst)
    | BinaryOp.Div, false, false -> TensorPrimitives.Divide<'T>(a, b, dst)
    | BinaryOp.Div, false, true -> TensorPrimitives.Divide<'T>(a, b[0], dst)
    | BinaryOp.Div, true, _ -> TensorPrimitives.Divide<'T>(a[0], b, dst)
    | BinaryOp.Pow, false, false -> TensorPrimitives.Pow<'T>(a, b, dst)
    | BinaryOp.Pow, false, true -> TensorPrimitives.Pow<'T>(a, b[0], dst)
    | BinaryOp.Pow, true, _ -> TensorPrimitives.Pow<'T>(a[0], b, dst)
    | BinaryOp.Max, false, false -> TensorPrimitives.Max<'T>(a, b, dst)
    | BinaryOp.Max, false, true -> TensorPrimitives.Max<'T>(a, b[0], dst)
    | BinaryOp.Max, true, _ -> TensorPrimitives.Max<'T>(b, a[0], dst)
    | BinaryOp.Min, false, false -> TensorPrimitives.Min<'T>(a, b, dst)
    | BinaryOp.Min, false, true -> TensorPrimitives.Min<'T>(a, b[0], dst)
    | BinaryOp.Min, true, _ -> TensorPrimitives.Min<'T>(b, a[0], dst)
    | BinaryOp.FloorDiv, _, _
    | BinaryOp.Rem, _, _ ->
        for i in 0 .. dst.Length - 1 do
            let x = if aScalar then a[0] else a[i]
            let y = if bScalar then b[0] else b[i]
            let q = 'T.Floor('T.op_Division (x, y))

            dst[i] <-
                if op = BinaryOp.FloorDiv then
                    q
                else
                    'T.op_Subtraction (x, 'T.op_Multiply (y, q))
    | cmp, _, _ -> Elementwise.Compare<'T>(compareKind cmp, a, aScalar, b, bScalar, dst)

/// Materialises `x` (of shape `shape`) broadcast to `target`.
let broadcastTo<'T> (shape: int[]) (x: 'T[]) (target: int[]) : 'T[] =
    if shape = target then
        x
    else
        let y = uninitialized<'T> (Shape.count target)
        Strided.Copy(target, x, 0, Shape.broadcastStrides shape target.Length, y, 0, Shape.strides target)
        y

/// How a broadcast operand lines up with the output: the whole output, one element, a block
/// repeated along the leading axes (period = its size), or one element per run along the trailing
/// axes (run = output size / its size).
type private Layout =
    | Full
    | One
    | Repeat of period: int
    | Stretch of run: int
    | General

let private layout (shape: int[]) (outShape: int[]) =
    let n = Shape.count shape
    let total = Shape.count outShape

    if n = total then
        Full
    elif n = 1 then
        One
    else
        let padded = Array.append (Array.create (outShape.Length - shape.Length) 1) shape
        // Leading axes of `padded` that are 1, the rest equal to the output's: a repeated block.
        let firstReal =
            padded
            |> Array.tryFindIndex (fun d -> d <> 1)
            |> Option.defaultValue padded.Length

        let lastReal =
            padded |> Array.tryFindIndexBack (fun d -> d <> 1) |> Option.defaultValue -1

        if Array.forall2 (=) padded[firstReal..] outShape[firstReal..] then
            Repeat n
        elif Array.forall2 (=) padded[..lastReal] outShape[..lastReal] then
            Stretch(total / n)
        else
            General

let private binaryT<'T when 'T :> IFloatingPointIeee754<'T>>
    (op: BinaryOp)
    (outShape: int[])
    (aShape: int[], a: 'T[])
    (bShape: int[], b: 'T[])
    : 'T[] =
    let total = Shape.count outShape
    let out = uninitialized<'T> total

    match layout aShape outShape, layout bShape outShape with
    | _ when total = 0 -> ()
    | Full, Full -> binaryRun op (ReadOnlySpan<'T> a) false (ReadOnlySpan<'T> b) false (Span out)
    | Full, One -> binaryRun op (ReadOnlySpan<'T> a) false (ReadOnlySpan<'T> b) true (Span out)
    | One, Full -> binaryRun op (ReadOnlySpan<'T> a) true (ReadOnlySpan<'T> b) false (Span out)
    | Full, Repeat period ->
        for start in 0..period .. total - 1 do
            binaryRun op (ReadOnlySpan(a, start, period)) false (ReadOnlySpan<'T> b) false (Span(out, start, period))
    | Repeat period, Full ->
        for start in 0..period .. total - 1 do
            binaryRun op (ReadOnlySpan<'T> a) false (ReadOnlySpan(b, start, period)) false (Span(out, start, period))
    | Full, Stretch run ->
        for r in 0 .. total / run - 1 do
            binaryRun op (ReadOnlySpan(a, r * run, run)) false (ReadOnlySpan(b, r, 1)) true (Span(out, r * run, run))
    | Stretch run, Full ->
        for r in 0 .. total / run - 1 do
            binaryRun op (ReadOnlySpan(a, r, 1)) true (ReadOnlySpan(b, r * run, run)) false (Span(out, r * run, run))
    | _ ->
        let a' = broadcastTo aShape a outShape
        let b' = broadcastTo bShape b outShape
        binaryRun op (ReadOnlySpan<'T> a') false (ReadOnlySpan<'T> b') false (Span out)

    out

/// Integer elementwise functions (the float-only ones are rejected by Prim.infer).
let private unaryInt (op: UnaryOp) (x: int[]) : int[] =
    match op with
    | UnaryOp.Neg -> Array.map (fun v -> -v) x
    | UnaryOp.Abs -> Array.map abs x
    | UnaryOp.Sign -> Array.map sign x
    | UnaryOp.Relu -> Array.map (max 0) x
    | _ -> invalidOp $"internal error: %A{op} is not defined for int32"

/// Integer binary functions on operands broadcast to the output. Floor division and remainder
/// follow Python (the quotient rounds down, the remainder has the divisor's sign); dividing by
/// zero is an error, not a wrong number.
let private binaryInt (op: BinaryOp) (outShape: int[]) (aShape: int[], a: int[]) (bShape: int[], b: int[]) : int[] =
    let a = broadcastTo aShape a outShape
    let b = broadcastTo bShape b outShape
    let n = Shape.count outShape
    let inline each (f: int -> int -> int) = Array.init n (fun i -> f a[i] b[i])

    let inline mask (f: int -> int -> bool) =
        each (fun x y -> if f x y then 1 else 0)

    let floorDiv x y =
        if y = 0 then
            let i = Array.findIndex (fun v -> v = 0) b
            Shape.fail (Prim.name (Prim.Binary op)) $"integer division by zero at flat index %d{i} of the output %s{Shape.format outShape}"

        let q = x / y
        if (x % y <> 0) && ((x < 0) <> (y < 0)) then q - 1 else q

    match op with
    | BinaryOp.Add -> each (+)
    | BinaryOp.Sub -> each (-)
    | BinaryOp.Mul -> each (*)
    | BinaryOp.Max -> each max
    | BinaryOp.Min -> each min
    | BinaryOp.FloorDiv -> each floorDiv
    | BinaryOp.Rem -> each (fun x y -> x - y * floorDiv x y)
    | BinaryOp.Eq -> mask (=)
    | BinaryOp.Ne -> mask (<>)
    | BinaryOp.Lt -> mask (<)
    | BinaryOp.Le -> mask (<=)
    | BinaryOp.Gt -> mask (>)
    | BinaryOp.Ge -> mask (>=)
    | BinaryOp.Div
    | BinaryOp.Pow -> invalidOp $"internal error: %A{op} is not defined for int32"

/// 1 where the condition is non-zero, else 0, as values of the branches' type.
let private nonZero<'T when 'T :> INumber<'T>> (cond: Storage) : 'T[] =
    match cond with
    | Storage.F32 c -> c |> Array.map (fun v -> if v <> 0.0f then 'T.One else 'T.Zero)
    | Storage.F64 c -> c |> Array.map (fun v -> if v <> 0.0 then 'T.One else 'T.Zero)
    | Storage.I32 c -> c |> Array.map (fun v -> if v <> 0 then 'T.One else 'T.Zero)

let private whereT<'T when 'T :> INumber<'T>> (outShape: int[]) (cond: int[] * 'T[]) (a: int[] * 'T[]) (b: int[] * 'T[]) =
    let bc (s, x) = broadcastTo s x outShape
    let c, a, b = bc cond, bc a, bc b
    let out = uninitialized<'T> (Shape.count outShape)
    Elementwise.Select<'T>(ReadOnlySpan c, ReadOnlySpan a, ReadOnlySpan b, Span out)
    out

// ---------------------------------------------------------------------------------------------
// Reductions

/// Splits a shape at an axis into [pre; n; post] element counts.
let private around (shape: int[]) (axis: int) =
    Shape.count shape[.. axis - 1], shape[axis], Shape.count shape[axis + 1 ..]

let private reduceT<'T when 'T :> INumber<'T>> (op: ReduceOp) (axes: int[]) (shape: int[]) (x: 'T[]) =
    let kind =
        match op with
        | ReduceOp.Sum -> ReduceKind.Sum
        | ReduceOp.Max -> ReduceKind.Max
        | ReduceOp.Min -> ReduceKind.Min

    // Merge runs of adjacent reduced axes, then reduce the groups from the last to the first.
    let mutable current = x
    let mutable currentShape = shape

    for axis in Array.rev axes do
        let pre, n, post = around currentShape axis
        let out = uninitialized<'T> (pre * post)
        Reduce.Axis<'T>(kind, current, pre, n, post, out)
        current <- out
        currentShape <- Array.append currentShape[.. axis - 1] currentShape[axis + 1 ..]

    if obj.ReferenceEquals(current, x) then
        Array.copy x
    else
        current

let private argT<'T when 'T :> INumber<'T>> (smallest: bool) (axis: int) (shape: int[]) (x: 'T[]) =
    let pre, n, post = around shape axis
    let out = uninitialized<int> (pre * post)
    Reduce.ArgExtremum<'T>(smallest, x, pre, n, post, out)
    out

// ---------------------------------------------------------------------------------------------
// Layout

let private permuteT<'T> (perm: int[]) (shape: int[]) (outShape: int[]) (x: 'T[]) =
    let y = uninitialized<'T> x.Length
    let inStrides = Shape.strides shape
    Strided.Copy(outShape, x, 0, Array.map (fun p -> inStrides[p]) perm, y, 0, Shape.strides outShape)
    y

let private sliceT<'T> (starts: int[]) (sizes: int[]) (shape: int[]) (x: 'T[]) =
    let y = uninitialized<'T> (Shape.count sizes)
    let s = Shape.strides shape
    let offset = Array.fold2 (fun acc i st -> acc + i * st) 0 starts s
    Strided.Copy(sizes, x, offset, s, y, 0, Shape.strides sizes)
    y

let private padT<'T> (low: int[]) (shape: int[]) (outShape: int[]) (x: 'T[]) =
    let y = Array.zeroCreate<'T> (Shape.count outShape)
    let s = Shape.strides outShape
    let offset = Array.fold2 (fun acc i st -> acc + i * st) 0 low s
    Strided.Copy(shape, x, 0, Shape.strides shape, y, offset, s)
    y

let private concatT<'T> (axis: int) (outShape: int[]) (parts: (int[] * 'T[])[]) =
    let y = uninitialized<'T> (Shape.count outShape)
    let s = Shape.strides outShape
    let mutable start = 0

    for shape, x in parts do
        Strided.Copy(shape, x, 0, Shape.strides shape, y, start * s[axis], s)
        start <- start + shape[axis]

    y

/// Raises the error of the first index outside [0, extent), naming its value and position.
let private checkIndices (op: string) (idx: int[]) (idxShape: int[]) (extent: int) (axis: int) (shape: int[]) =
    for i in 0 .. idx.Length - 1 do
        let j = idx[i]

        if j < 0 || j >= extent then
            let at =
                if idxShape.Length <= 1 then
                    $"position %d{i}"
                else
                    $"flat position %d{i} of the indices %s{Shape.format idxShape}"

            Shape.fail op $"index %d{j} at %s{at} is out of range [0, %d{extent}) for axis %d{axis} of shape %s{Shape.format shape}"

/// The [batch; pre; n; post] view of a shape around `axis` with `batchDims` leading batch axes.
let private blocks (shape: int[]) (batchDims: int) (axis: int) =
    Shape.count shape[.. batchDims - 1], Shape.count shape[batchDims .. axis - 1], shape[axis], Shape.count shape[axis + 1 ..]

let private gatherT<'T> (axis: int) (batchDims: int) (shape: int[]) (idxShape: int[]) (idx: int[]) (x: 'T[]) =
    let batch, pre, n, post = blocks shape batchDims axis
    let m = Shape.count idxShape[batchDims..]
    let out = uninitialized<'T> (batch * pre * m * post)
    Indexing.Gather(x, idx, batch, pre, n, post, m, out)
    out

let private scatterAddT<'T when 'T :> INumber<'T>>
    (axis: int)
    (batchDims: int)
    (size: int)
    (updShape: int[])
    (idxShape: int[])
    (idx: int[])
    (upd: 'T[])
    =
    let r = idxShape.Length - batchDims
    let batch = Shape.count updShape[.. batchDims - 1]
    let pre = Shape.count updShape[batchDims .. axis - 1]
    let m = Shape.count idxShape[batchDims..]
    let post = Shape.count updShape[axis + r ..]
    let out = Array.zeroCreate<'T> (batch * pre * size * post)
    Indexing.ScatterAdd(upd, idx, batch, pre, m, post, size, out)
    out

let private cumsumT<'T when 'T :> INumber<'T>> (axis: int) (reverse: bool) (shape: int[]) (x: 'T[]) =
    let pre, n, post = around shape axis
    let out = uninitialized<'T> x.Length
    Indexing.Cumsum(x, pre, n, post, reverse, out)
    out

let private argsortT<'T when 'T :> INumber<'T>> (axis: int) (descending: bool) (shape: int[]) (x: 'T[]) =
    let pre, n, post = around shape axis
    let out = uninitialized<int> x.Length
    Indexing.Argsort(x, pre, n, post, descending, out)
    out

let private searchSortedT<'T when 'T :> INumber<'T>> (right: bool) (sortedShape: int[]) (valueShape: int[]) (sorted: 'T[]) (values: 'T[]) =
    let n = sortedShape[sortedShape.Length - 1]
    let m = valueShape[valueShape.Length - 1]
    let rows = Shape.count sortedShape[.. sortedShape.Length - 2]
    let out = uninitialized<int> values.Length
    Indexing.SearchSorted(sorted, values, rows, n, m, right, out)
    out

/// Float to int32 by truncation toward zero (NumPy's astype); a value that has no int32 (NaN,
/// infinite or out of range) is an error naming it, not an arbitrary number.
let private toInt32<'T when 'T :> IFloatingPointIeee754<'T>> (x: 'T[]) : int[] =
    x
    |> Array.mapi (fun i v ->
        let t = 'T.Truncate v

        let d = Double.CreateTruncating t

        if not (Double.IsFinite d) || d < float Int32.MinValue || d > float Int32.MaxValue then
            Shape.fail "Tensor.convert" $"the value %s{string v} at flat index %d{i} has no int32 value (NaN, infinite or out of range)"

        int d)

// ---------------------------------------------------------------------------------------------
// Matrix product

/// Batched product with broadcast batch axes; one GEMM call per batch element, or a single GEMM
/// when a batched A meets a plain matrix B (the rows of all batch elements stack into one matrix).
let private matmul
    (gemm: bool * bool * int * int * int * 'T[] * int * int * 'T[] * int * int * 'T[] * int * int -> unit)
    (transA: bool)
    (transB: bool)
    (aShape: int[])
    (a: 'T[])
    (bShape: int[])
    (b: 'T[])
    (outShape: int[])
    =
    let ra, rb, ro = aShape.Length, bShape.Length, outShape.Length
    let m, n = outShape[ro - 2], outShape[ro - 1]
    let k = if transA then aShape[ra - 2] else aShape[ra - 1]
    let lda = aShape[ra - 1]
    let ldb = bShape[rb - 1]
    let out = uninitialized<'T> (Shape.count outShape)
    let batchShape = outShape[.. ro - 3]
    let batch = Shape.count batchShape

    if batch = 0 || m = 0 || n = 0 then
        ()
    elif rb = 2 && not transA && Shape.count aShape[.. ra - 3] = batch then
        gemm (false, transB, batch * m, n, k, a, 0, lda, b, 0, ldb, out, 0, n)
    else
        let aStrides = Shape.broadcastStrides aShape[.. ra - 3] batchShape.Length
        let bStrides = Shape.broadcastStrides bShape[.. rb - 3] batchShape.Length
        let aMat = aShape[ra - 2] * aShape[ra - 1]
        let bMat = bShape[rb - 2] * bShape[rb - 1]
        let index = Array.zeroCreate batchShape.Length

        for t in 0 .. batch - 1 do
            // Decompose t into the batch multi-index to find each operand's matrix.
            let mutable rest = t

            for d in batchShape.Length - 1 .. -1 .. 0 do
                index[d] <- rest % batchShape[d]
                rest <- rest / batchShape[d]

            let mutable ai = 0
            let mutable bi = 0

            for d in 0 .. batchShape.Length - 1 do
                ai <- ai + index[d] * aStrides[d]
                bi <- bi + index[d] * bStrides[d]

            gemm (transA, transB, m, n, k, a, ai * aMat, lda, b, bi * bMat, ldb, out, t * m * n, n)

    out

let private sgemm (ta, tb, m, n, k, a, ao, lda, b, bo, ldb, c, co, ldc) =
    Gemm.Sgemm(ta, tb, m, n, k, a, ao, lda, b, bo, ldb, c, co, ldc, false)

let private dgemm (ta, tb, m, n, k, a, ao, lda, b, bo, ldb, c, co, ldc) =
    Gemm.Dgemm(ta, tb, m, n, k, a, ao, lda, b, bo, ldb, c, co, ldc, false)

// ---------------------------------------------------------------------------------------------
// Dispatch

let private f32 (s: Storage) = s.Float32s
let private f64 (s: Storage) = s.Float64s

let private i32 (s: Storage) =
    match s with
    | Storage.I32 a -> a
    | _ -> invalidOp "expected int32 storage"

/// Evaluates a primitive on concrete arguments (shape, storage) whose output shape is `outShape`.
let run (prim: Prim) (outShape: int[]) (args: (int[] * Storage)[]) : Storage =
    let shape0, x0 = args[0]

    /// The same function of the first argument's buffer, for each element type.
    let inline each (f32f: float32[] -> float32[]) (f64f: float[] -> float[]) (i32f: int[] -> int[]) =
        match x0 with
        | Storage.F32 a -> Storage.F32(f32f a)
        | Storage.F64 a -> Storage.F64(f64f a)
        | Storage.I32 a -> Storage.I32(i32f a)

    /// A function of the first argument's buffer whose result is int32 whatever its type.
    let inline toInts (f32f: float32[] -> int[]) (f64f: float[] -> int[]) (i32f: int[] -> int[]) =
        match x0 with
        | Storage.F32 a -> Storage.I32(f32f a)
        | Storage.F64 a -> Storage.I32(f64f a)
        | Storage.I32 a -> Storage.I32(i32f a)

    /// The index argument, range-checked against the gathered (or scattered-into) axis.
    let indices (extent: int) (axis: int) (shape: int[]) =
        let idxShape, idx = args[1]
        let idx = i32 idx
        checkIndices (Prim.name prim) idx idxShape extent axis shape
        idxShape, idx

    match prim with
    | Prim.Unary op -> each (unaryT op) (unaryT op) (unaryInt op)
    | Prim.Binary op ->
        let shape1, x1 = args[1]

        match x0 with
        | Storage.F32 a -> Storage.F32(binaryT op outShape (shape0, a) (shape1, f32 x1))
        | Storage.F64 a -> Storage.F64(binaryT op outShape (shape0, a) (shape1, f64 x1))
        | Storage.I32 a -> Storage.I32(binaryInt op outShape (shape0, a) (shape1, i32 x1))
    | Prim.Where ->
        let (sa, a), (sb, b) = args[1], args[2]
        let cond = fst args[0]

        match a with
        | Storage.F32 a -> Storage.F32(whereT outShape (cond, nonZero x0) (sa, a) (sb, f32 b))
        | Storage.F64 a -> Storage.F64(whereT outShape (cond, nonZero x0) (sa, a) (sb, f64 b))
        | Storage.I32 a -> Storage.I32(whereT outShape (cond, nonZero x0) (sa, a) (sb, i32 b))
    | Prim.Reduce(op, axes) -> each (reduceT op axes shape0) (reduceT op axes shape0) (reduceT op axes shape0)
    | Prim.ArgMax axis -> toInts (argT false axis shape0) (argT false axis shape0) (argT false axis shape0)
    | Prim.ArgMin axis -> toInts (argT true axis shape0) (argT true axis shape0) (argT true axis shape0)
    | Prim.MatMul(transA, transB) ->
        let shape1, x1 = args[1]

        match x0 with
        | Storage.F32 a -> Storage.F32(matmul sgemm transA transB shape0 a shape1 (f32 x1) outShape)
        | Storage.F64 a -> Storage.F64(matmul dgemm transA transB shape0 a shape1 (f64 x1) outShape)
        | Storage.I32 _ -> invalidOp "internal error: int32 matmul"
    | Prim.Reshape _ -> x0 // buffers are immutable: a reshape shares them
    | Prim.BroadcastTo target ->
        each (fun x -> broadcastTo shape0 x target) (fun x -> broadcastTo shape0 x target) (fun x -> broadcastTo shape0 x target)
    | Prim.Permute perm -> each (permuteT perm shape0 outShape) (permuteT perm shape0 outShape) (permuteT perm shape0 outShape)
    | Prim.Slice(starts, sizes) -> each (sliceT starts sizes shape0) (sliceT starts sizes shape0) (sliceT starts sizes shape0)
    | Prim.Pad(low, _) -> each (padT low shape0 outShape) (padT low shape0 outShape) (padT low shape0 outShape)
    | Prim.Concat axis ->
        match x0 with
        | Storage.F32 _ -> Storage.F32(concatT axis outShape (args |> Array.map (fun (s, x) -> s, f32 x)))
        | Storage.F64 _ -> Storage.F64(concatT axis outShape (args |> Array.map (fun (s, x) -> s, f64 x)))
        | Storage.I32 _ -> Storage.I32(concatT axis outShape (args |> Array.map (fun (s, x) -> s, i32 x)))
    | Prim.Gather(axis, batchDims) ->
        let idxShape, idx = indices shape0[axis] axis shape0

        let g x =
            gatherT axis batchDims shape0 idxShape idx x

        each g g g
    | Prim.ScatterAdd(axis, batchDims, size) ->
        let idxShape, idx = indices size axis outShape

        each
            (scatterAddT axis batchDims size shape0 idxShape idx)
            (scatterAddT axis batchDims size shape0 idxShape idx)
            (scatterAddT axis batchDims size shape0 idxShape idx)
    | Prim.Cumsum(axis, reverse) -> each (cumsumT axis reverse shape0) (cumsumT axis reverse shape0) (cumsumT axis reverse shape0)
    | Prim.Argsort(axis, descending) ->
        toInts (argsortT axis descending shape0) (argsortT axis descending shape0) (argsortT axis descending shape0)
    | Prim.SearchSorted right ->
        let shape1, x1 = args[1]

        match x0 with
        | Storage.F32 a -> Storage.I32(searchSortedT right shape0 shape1 a (f32 x1))
        | Storage.F64 a -> Storage.I32(searchSortedT right shape0 shape1 a (f64 x1))
        | Storage.I32 a -> Storage.I32(searchSortedT right shape0 shape1 a (i32 x1))
    | Prim.Convert target ->
        match x0, target with
        | Storage.F32 a, Float64 -> Storage.F64(Array.map float a)
        | Storage.F64 a, Float32 -> Storage.F32(Array.map float32 a)
        | Storage.F32 a, Float32 -> Storage.F32(Array.copy a)
        | Storage.F64 a, Float64 -> Storage.F64(Array.copy a)
        | Storage.I32 a, Float32 -> Storage.F32(Array.map float32 a)
        | Storage.I32 a, Float64 -> Storage.F64(Array.map float a)
        | Storage.I32 a, DType.Int32 -> Storage.I32(Array.copy a)
        | Storage.F32 a, DType.Int32 -> Storage.I32(toInt32 a)
        | Storage.F64 a, DType.Int32 -> Storage.I32(toInt32 a)
